import { commonConfig, env, readConfig, servicePorts, type ConfigOf, type Env } from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...servicePorts('feature'),
  batchSize: env.int('AISLE_FEATURE_BATCH_SIZE', {
    default: 500,
    min: 1,
    max: 10_000,
    description: 'most events applied in one transaction',
  }),
  maxInFlight: env.int('AISLE_FEATURE_MAX_IN_FLIGHT', {
    default: 4000,
    min: 1,
    description: 'most unacknowledged events',
  }),
};

export type FeatureConfig = ConfigOf<typeof configSpec>;

export function loadFeatureConfig(source: Env = process.env): FeatureConfig {
  return readConfig(configSpec, source);
}
