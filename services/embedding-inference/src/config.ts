import {
  commonConfig,
  modelConfig,
  pinnedVersionsConfig,
  env,
  readConfig,
  servicePorts,
  type ConfigOf,
  type Env,
} from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...modelConfig,
  ...pinnedVersionsConfig,
  ...servicePorts('embedding-inference'),
  providers: env.list('AISLE_ORT_PROVIDERS', {
    default: ['cpu'],
    allowed: ['cuda', 'webgpu', 'cpu'],
    description: 'ONNX Runtime execution providers in order of preference; CPU is the fallback',
  }),
  ortThreads: env.int('AISLE_ORT_THREADS', {
    default: 1,
    min: 1,
    max: 64,
    description: 'intra-op threads per session (1 was fastest for small models on CPU)',
  }),
  maxBatch: env.int('AISLE_EMBEDDING_MAX_BATCH', {
    default: 16,
    min: 1,
    max: 4096,
    description: 'most requests per model run',
  }),
  maxDelayMs: env.duration('AISLE_EMBEDDING_MAX_DELAY', {
    default: 2,
    description: 'longest a request waits for others to batch with',
  }),
  budgetMs: env.duration('AISLE_EMBEDDING_QUEUE_BUDGET', {
    default: 200,
    description: 'requests queued longer are shed with RESOURCE_EXHAUSTED',
  }),
};

export type EmbeddingConfig = ConfigOf<typeof configSpec>;

export function loadEmbeddingConfig(source: Env = process.env): EmbeddingConfig {
  return readConfig(configSpec, source);
}
