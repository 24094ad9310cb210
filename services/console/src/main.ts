import { runService } from '@aisle/runtime';
import { startConsole } from './app';
import { loadConsoleConfig } from './config';

runService('console', loadConsoleConfig, startConsole);
