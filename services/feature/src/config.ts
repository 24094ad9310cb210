import { Streams } from '@aisle/contracts';
import { commonConfig, ConfigError, env, readConfig, servicePorts, type ConfigOf, type Env } from '@aisle/runtime';
// The forget markers' key and retention (kept apart: one list would repeat the other services' imports).
import { forgetConfig } from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...forgetConfig,
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
  appliedMarkerRetentionMs: env.duration('AISLE_APPLIED_MARKER_RETENTION', {
    default: 35 * 24 * 3_600_000,
    description:
      "how long the exactly-once markers of applied events are kept (0 = forever); must exceed the EVENTS stream's 30 days, or a replay would apply old events twice",
  }),
};

export type FeatureConfig = ConfigOf<typeof configSpec>;

export function loadFeatureConfig(source: Env = process.env): FeatureConfig {
  const config = readConfig(configSpec, source);
  const r = config.appliedMarkerRetentionMs;
  if (r !== 0 && r <= Streams.EVENTS.maxAgeMs)
    throw new ConfigError([
      `AISLE_APPLIED_MARKER_RETENTION must be 0 or longer than the EVENTS stream's ${Streams.EVENTS.maxAgeMs / 86_400_000} days, got ${r}ms`,
    ]);
  return config;
}
