import { commonConfig, env, forgetConfig, readConfig, servicePorts, type ConfigOf, type Env } from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...servicePorts('experiment'),
  ...forgetConfig,
  analysisIntervalMs: env.duration('AISLE_EXPERIMENT_ANALYSIS_INTERVAL', {
    default: 30_000,
    description: 'how often results are recomputed, published when changed, and guardrails checked',
  }),
  batchSize: env.int('AISLE_EXPERIMENT_BATCH_SIZE', {
    default: 500,
    min: 1,
    max: 10_000,
    description: 'most served responses or events joined in one transaction',
  }),
  maxInFlight: env.int('AISLE_EXPERIMENT_MAX_IN_FLIGHT', {
    default: 10_000,
    min: 1,
    description: 'most unacknowledged messages per consumer (outcomes waiting for their impression count)',
  }),
  servedGraceMs: env.duration('AISLE_EXPERIMENT_SERVED_GRACE', {
    default: 5_000,
    description:
      'how much later than an outcome its impression may reach the served stream; an outcome whose request ' +
      'is still unknown after the served consumer has read this far past it is not in an experiment',
  }),
  outcomeRetryMs: env.duration('AISLE_EXPERIMENT_OUTCOME_RETRY', {
    default: 1_000,
    description: 'redelivery delay of an outcome waiting for its impression',
  }),
};

export type ExperimentConfig = ConfigOf<typeof configSpec>;

export function loadExperimentConfig(source: Env = process.env): ExperimentConfig {
  return readConfig(configSpec, source);
}
