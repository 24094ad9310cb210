import { runService } from '@aisle/runtime';
import { startIngest } from './app';
import { loadIngestConfig } from './config';

runService('ingest', loadIngestConfig, startIngest);
