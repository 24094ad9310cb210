import { runService } from '@aisle/runtime';
import { startEmbedding } from './app';
import { loadEmbeddingConfig } from './config';

runService('embedding-inference', loadEmbeddingConfig, startEmbedding);
