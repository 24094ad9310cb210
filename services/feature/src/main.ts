import { runService } from '@aisle/runtime';
import { startFeature } from './app';
import { loadFeatureConfig } from './config';

runService('feature', loadFeatureConfig, startFeature);
