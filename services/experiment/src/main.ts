import { runService } from '@aisle/runtime';
import { startExperiment } from './app';
import { loadExperimentConfig } from './config';

runService('experiment', loadExperimentConfig, startExperiment);
