import { runService } from '@aisle/runtime';
import { startRanking } from './app';
import { loadRankingConfig } from './config';

runService('ranking', loadRankingConfig, startRanking);
