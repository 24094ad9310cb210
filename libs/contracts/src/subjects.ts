/**
 * NATS subjects, JetStream streams and headers: the wire contract between producers and services.
 * Plain data only, so that any client (and any service) can import it without a NATS dependency.
 */

export const EVENT_TYPES = ['view', 'click', 'add_to_cart', 'remove_from_cart', 'purchase', 'search'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

export const DEFAULT_TENANT = 'default';

/** UTF-8, base64url without padding (no Node Buffer: browsers import this module too). */
function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const Subjects = {
  /**
   * Producers publish raw clickstream events here (JSON or protobuf): `aisle.clickstream.v1.<type>.<tenant>`
   * binds the tenant to the subject, which a producer's NATS user can be limited to (required in production);
   * `aisle.clickstream.v1.<type>` takes it from the payload (local development).
   */
  clickstream: (type: string, tenant?: string): string =>
    tenant === undefined ? `aisle.clickstream.v1.${type}` : `aisle.clickstream.v1.${type}.${tenant}`,
  clickstreamAll: 'aisle.clickstream.v1.>',
  /** Producers publish catalog items here: `aisle.catalog.v1.upsert.<tenant>` (tenant-bound) or `...upsert`. */
  catalogUpsert: 'aisle.catalog.v1.upsert',
  catalog: (tenant: string): string => `aisle.catalog.v1.upsert.${tenant}`,
  catalogAll: 'aisle.catalog.v1.>',
  /** Ingest republishes validated, normalized events here, always as protobuf. */
  events: (type: EventType): string => `aisle.events.v1.${type}`,
  /**
   * Where ingest published normalized catalog items before stream ITEMS; consumers of EVENTS still skip
   * what an older ingest left there.
   */
  eventsItem: 'aisle.events.v1.item',
  /**
   * The accepted catalog (stream ITEMS, one message per item: the last value per subject), which every
   * service but ingest materializes: `aisle.items.v1.<tenant>.<item key>`, the key being the item id in
   * base64url (one subject token whatever the id holds). Only ingest publishes here.
   */
  item: (tenant: string, itemId: string): string => `aisle.items.v1.${tenant}.${base64url(itemId)}`,
  /** Every item of one tenant (one token after the tenant: `acme.*` never matches tenant `acme.eu`'s). */
  itemsOf: (tenant: string): string => `aisle.items.v1.${tenant}.*`,
  itemsAll: 'aisle.items.v1.>',
  eventsAll: 'aisle.events.v1.>',
  /** Dead letters: original bytes plus an `Aisle-Reject-Reason` header. */
  dlq: (source: DlqSource): string => `aisle.dlq.v1.${source}`,
  dlqAll: 'aisle.dlq.v1.>',
  userFeaturesUpdated: 'aisle.features.v1.user_updated',
  rankingServed: 'aisle.ranking.v1.served',
  churnAlert: 'aisle.churn.v1.alert',
  modelsPublished: 'aisle.models.v1.published',
  /** The trainer refused a candidate (ModelRejected, with the reason). */
  modelsRejected: 'aisle.models.v1.rejected',
  /**
   * Erase one user of one tenant (ForgetUser), on the tenant's own subject (a producer's NATS user may be
   * allowed only its tenant's): every owner of user data consumes `privacyForgetAll`.
   */
  privacyForget: (tenant: string): string => `aisle.privacy.v1.forget.${tenant}`,
  privacyForgetAll: 'aisle.privacy.v1.forget.>',
  /** One owner finished erasing (UserForgotten, without personal data). */
  privacyForgotten: 'aisle.privacy.v1.forgotten',
  /** Forget requests an owner could not use (kept on the in-memory PRIVACY stream, never the DLQ on disk). */
  privacyRejected: 'aisle.privacy.v1.rejected',
  /** Experiment results (`ExperimentResult`), whenever an experiment's figures change. */
  experimentResult: 'aisle.experiment.v1.result',
} as const;

/** Which stream a dead letter came from: raw producer input, normalized events, feature notifications. */
export type DlqSource = 'clickstream' | 'catalog' | 'events' | 'features' | 'ranking';

export interface StreamSpec {
  readonly name: string;
  readonly subjects: readonly string[];
  /** Retention in milliseconds (0 = unlimited). */
  readonly maxAgeMs: number;
  /** JetStream de-duplication window on `Nats-Msg-Id`, in milliseconds. */
  readonly duplicateWindowMs: number;
  /** `memory`: never written to disk (forget requests, which name the user). Default: file. */
  readonly storage?: 'memory';
  /** Messages kept per subject, the oldest discarded first (1: a last-value store). Default: unlimited. */
  readonly maxMsgsPerSubject?: number;
  readonly description: string;
}

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;

export const Streams = {
  CLICKSTREAM: {
    name: 'CLICKSTREAM',
    subjects: [Subjects.clickstreamAll],
    maxAgeMs: 7 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'Raw clickstream events from producers',
  },
  CATALOG: {
    name: 'CATALOG',
    subjects: [Subjects.catalogAll],
    maxAgeMs: 7 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'Raw catalog upserts from producers',
  },
  EVENTS: {
    name: 'EVENTS',
    subjects: [Subjects.eventsAll],
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'Validated, normalized events (protobuf), de-duplicated on event id',
  },
  ITEMS: {
    name: 'ITEMS',
    subjects: [Subjects.itemsAll],
    maxAgeMs: 0,
    duplicateWindowMs: 2 * HOUR,
    maxMsgsPerSubject: 1,
    description: 'The accepted catalog: the latest version of each item of each tenant, published by ingest alone',
  },
  DLQ: {
    name: 'DLQ',
    subjects: [Subjects.dlqAll],
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'Rejected input with the reason in the Aisle-Reject-Reason header',
  },
  FEATURES: {
    name: 'FEATURES',
    subjects: ['aisle.features.v1.>'],
    maxAgeMs: 1 * DAY,
    duplicateWindowMs: 2 * 60 * 1000,
    description: 'Feature change notifications',
  },
  RANKING: {
    name: 'RANKING',
    subjects: ['aisle.ranking.v1.>'],
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 2 * 60 * 1000,
    description: 'Served impressions',
  },
  CHURN: {
    name: 'CHURN',
    subjects: ['aisle.churn.v1.>'],
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 2 * HOUR,
    description: 'Churn alerts',
  },
  PRIVACY: {
    name: 'PRIVACY',
    // Not `aisle.privacy.v1.>`: a forget request on a subject without a tenant is refused at publish.
    subjects: ['aisle.privacy.v1.forget.>', 'aisle.privacy.v1.forgotten', 'aisle.privacy.v1.rejected'],
    maxAgeMs: 7 * DAY,
    duplicateWindowMs: 2 * HOUR,
    storage: 'memory',
    description: 'Forget requests and their completions; in memory only, so no user id of a request reaches disk',
  },
  MODELS: {
    name: 'MODELS',
    subjects: ['aisle.models.v1.>'],
    maxAgeMs: 0,
    duplicateWindowMs: 2 * 60 * 1000,
    description: 'Model publication announcements',
  },
  EXPERIMENTS: {
    name: 'EXPERIMENTS',
    subjects: ['aisle.experiment.v1.>'],
    maxAgeMs: 30 * DAY,
    duplicateWindowMs: 2 * 60 * 1000,
    description: 'Experiment results',
  },
} as const satisfies Record<string, StreamSpec>;

export const MODELS_BUCKET = 'aisle-models';

/** NATS KV bucket of experiment definitions: key `<tenant>.<experiment id>`, value `Experiment` as proto3 JSON. */
export const EXPERIMENTS_BUCKET = 'aisle-experiments';

export const Headers = {
  contentType: 'Content-Type',
  msgId: 'Nats-Msg-Id',
  rejectReason: 'Aisle-Reject-Reason',
  originalSubject: 'Aisle-Original-Subject',
  rejectedBy: 'Aisle-Rejected-By',
  tenant: 'Aisle-Tenant',
} as const;

export const ContentTypes = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
} as const;

/** Declared tenants (key = tenant, value = its settings as JSON), followed by every service at run time. */
export const TENANTS_BUCKET = 'aisle-tenants';

/**
 * Splits a producer subject after `prefix` into its first token and the tenant the rest binds, e.g.
 * `aisle.clickstream.v1.view.acme` -> `{ name: 'view', tenant: 'acme' }` and `aisle.clickstream.v1.view`
 * -> `{ name: 'view' }` (tenants may contain dots: everything after the name is the tenant). Undefined when
 * the subject is not under `prefix`.
 */
export function splitSubject(subject: string, prefix: string): { name: string; tenant?: string } | undefined {
  if (!subject.startsWith(prefix + '.')) return undefined;
  const rest = subject.slice(prefix.length + 1);
  const dot = rest.indexOf('.');
  return dot < 0 ? { name: rest } : { name: rest.slice(0, dot), tenant: rest.slice(dot + 1) };
}
