import { runService } from '@aisle/runtime';
import { startChurn } from './app';
import { loadChurnConfig } from './config';

runService('churn-prediction', loadChurnConfig, startChurn);
