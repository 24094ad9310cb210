import {
  commonConfig,
  modelConfig,
  pinnedVersionsConfig,
  defaultAddress,
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
  ...servicePorts('churn-prediction'),
  featureAddr: env.string('AISLE_FEATURE_ADDR', {
    default: defaultAddress('feature'),
    description: 'feature service gRPC address',
  }),
  threshold: env.number('AISLE_CHURN_THRESHOLD', {
    default: 0.7,
    min: 0,
    max: 1,
    description: 'risk at which a user is at risk (band high) and an alert fires',
  }),
  hysteresis: env.number('AISLE_CHURN_HYSTERESIS', {
    default: 0.1,
    min: 0,
    max: 1,
    description: 'risk must fall this far below the threshold before another alert can fire',
  }),
  rescoreIntervalMs: env.duration('AISLE_CHURN_RESCORE_INTERVAL', {
    default: 300_000,
    description: 'how often every scored user is rescored (risk grows with silence, which sends no events)',
  }),
  batchSize: env.int('AISLE_CHURN_BATCH_SIZE', {
    default: 200,
    min: 1,
    max: 1000,
    description: 'users scored per feature call',
  }),
};

export type ChurnConfig = ConfigOf<typeof configSpec>;

export function loadChurnConfig(source: Env = process.env): ChurnConfig {
  return readConfig(configSpec, source);
}
