import { commonConfig, forgetConfig, env, readConfig, servicePorts, type ConfigOf, type Env } from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...forgetConfig,
  ...servicePorts('ingest'),
  batchSize: env.int('AISLE_INGEST_BATCH_SIZE', {
    default: 500,
    min: 1,
    max: 10_000,
    description: 'most messages validated and stored in one transaction',
  }),
  maxInFlight: env.int('AISLE_INGEST_MAX_IN_FLIGHT', {
    default: 4000,
    min: 1,
    description: 'most unacknowledged messages per consumer',
  }),
  maxItemsPerTenant: env.int('AISLE_INGEST_MAX_ITEMS_PER_TENANT', {
    default: 1_000_000,
    min: 1,
    description:
      "most items in one tenant's catalog; new items beyond it are dead-lettered (services keep catalogs in memory)",
  }),
  eventRetentionMs: env.duration('AISLE_EVENT_RETENTION', {
    default: 365 * 24 * 3_600_000,
    description: 'stored events that occurred longer ago than this are deleted, hourly (0 = keep forever)',
  }),
  subjectTenant: env.oneOf('AISLE_INGEST_SUBJECT_TENANT', ['auto', 'required', 'optional'] as const, {
    default: 'auto',
    description:
      "`required`: input on the bus must name its tenant in the subject (`aisle.clickstream.v1.<type>.<tenant>`, `aisle.catalog.v1.upsert.<tenant>`), which the producer's NATS user is limited to; other input is dead-lettered. `optional` also takes the payload's tenant on tenant-less subjects (local development). `auto`: required when AISLE_ENV=production",
  }),
  trackMaxEvents: env.int('AISLE_INGEST_TRACK_MAX_EVENTS', {
    default: 1000,
    min: 1,
    description: 'most events in one gRPC Track call',
  }),
};

export type IngestConfig = ConfigOf<typeof configSpec>;

export function loadIngestConfig(source: Env = process.env): IngestConfig {
  return readConfig(configSpec, source);
}
