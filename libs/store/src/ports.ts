/**
 * Storage ports. Services depend on these interfaces only; `openStore(url, ports)` picks the adapter and hands over the declared ports.
 * Timestamps are epoch milliseconds. A write whose records carry a number that is not finite (or a
 * timestamp outside the range of a date) is refused whole with a StoreError naming the record and field;
 * nothing of it is written. A `limit` of zero or less returns nothing.
 */

import type { Event, Item } from '@aisle/contracts';

/** Events as stored: the shared `Event`, its type read back as the stored string. */
export type StoredEvent = Omit<Event, 'type'> & { type: string };

export interface EventScanOptions {
  tenant?: string;
  /** Inclusive. */
  fromMs?: number;
  /** Exclusive. */
  toMs?: number;
  /** Rows fetched per round trip. */
  pageSize?: number;
}

/**
 * Whether two events with one (tenant, eventId) say the same thing: every field but `ingestedAt` (a
 * re-send is ingested again later). Different content under one id is a producer bug, not a re-send.
 */
export function sameEventContent(a: StoredEvent, b: StoredEvent): boolean {
  const context = (c: Record<string, string>) => JSON.stringify(Object.entries(c).sort(([x], [y]) => (x < y ? -1 : 1)));
  return (
    a.tenant === b.tenant &&
    a.eventId === b.eventId &&
    a.type === b.type &&
    a.userId === b.userId &&
    a.sessionId === b.sessionId &&
    a.itemId === b.itemId &&
    a.query === b.query &&
    a.quantity === b.quantity &&
    a.price === b.price &&
    a.currency === b.currency &&
    a.occurredAt === b.occurredAt &&
    a.requestId === b.requestId &&
    a.position === b.position &&
    context(a.context) === context(b.context)
  );
}

export interface EventRepository {
  /**
   * Inserts events not stored yet; (tenant, eventId) is the idempotency key. A key stored (or earlier
   * in `events`) with the same content is a re-send and is skipped; with different content it is a
   * conflict: nothing is written for it and its index in `events` is listed in `conflicting`.
   */
  insertMany(events: readonly StoredEvent[]): Promise<{ inserted: number; conflicting: number[] }>;
  count(filter?: { tenant?: string }): Promise<number>;
  /** Every event in (occurredAt, eventId) order. */
  scan(opts?: EventScanOptions): AsyncIterable<StoredEvent>;
  /** Event time range and count of a tenant's events. */
  stats(
    tenant?: string,
  ): Promise<{ count: number; minOccurredAt: number | undefined; maxOccurredAt: number | undefined }>;
  /**
   * Retention: deletes every event (of every tenant) that occurred before `occurredBeforeMs`, in chunks
   * that never hold the store for long. An event re-sent after its deletion is stored again.
   */
  deleteBefore(occurredBeforeMs: number): Promise<{ deleted: number }>;
  /** Right to be forgotten: deletes every event of the user; returns how many and their ids. */
  forgetUser(tenant: string, userId: string): Promise<{ deleted: number; eventIds: string[] }>;
}

export type CatalogItem = Item;

export interface ItemRepository {
  /** Writes items whose `updatedAt` is not older than the stored one. Returns how many were written. */
  upsertMany(items: readonly CatalogItem[]): Promise<{ written: number }>;
  getMany(tenant: string, itemIds: readonly string[]): Promise<Map<string, CatalogItem>>;
  count(filter?: { tenant?: string }): Promise<number>;
  scan(tenant: string): AsyncIterable<CatalogItem>;
}

/** Named collections of JSON documents keyed by (tenant, id). */
export type DocumentCollection =
  | 'user_features'
  | 'item_features'
  | 'item_covisits'
  | 'feature_meta'
  /** The experiment service: served requests in an experiment with their joined outcomes. */
  | 'experiment_requests';

/** Reads and writes inside one atomic transaction. */
export interface DocumentTx {
  getMany<T>(collection: DocumentCollection, tenant: string, ids: readonly string[]): Promise<Map<string, T>>;
  putMany<T>(collection: DocumentCollection, tenant: string, docs: ReadonlyMap<string, T>): Promise<void>;
  deleteMany(collection: DocumentCollection, tenant: string, ids: readonly string[]): Promise<void>;
  /**
   * Records that `consumer` applied each of `eventIds` (one round trip for the batch) and returns the ids
   * that were not recorded before: apply those, each once, and skip the rest. Makes redelivery and replay
   * idempotent.
   */
  markApplied(consumer: string, tenant: string, eventIds: readonly string[]): Promise<Set<string>>;
}

export interface DocumentRepository {
  /** Runs `fn` atomically: all of its writes commit together or none do. Transactions are serialized per store. */
  transact<R>(fn: (tx: DocumentTx) => Promise<R>): Promise<R>;
  getMany<T>(collection: DocumentCollection, tenant: string, ids: readonly string[]): Promise<Map<string, T>>;
  scan<T>(collection: DocumentCollection, tenant: string): AsyncIterable<{ id: string; doc: T }>;
  count(collection: DocumentCollection, tenant?: string): Promise<number>;
  /** Document ids after `after` in id order, at most `limit`. */
  listIds(collection: DocumentCollection, tenant: string, after: string, limit: number): Promise<string[]>;
  /**
   * Retention: forgets `consumer`'s applied markers recorded before `appliedBeforeMs` (of every tenant).
   * A redelivered or replayed event older than that would be applied again, so the retention must exceed
   * how long the stream keeps events.
   */
  pruneApplied(consumer: string, appliedBeforeMs: number): Promise<{ deleted: number }>;
  /** Right to be forgotten: deletes these documents; returns how many there were. */
  deleteMany(collection: DocumentCollection, tenant: string, ids: readonly string[]): Promise<number>;
  /** Right to be forgotten: deletes `consumer`'s applied markers of these event ids (ids may embed the user). */
  forgetApplied(consumer: string, tenant: string, eventIds: readonly string[]): Promise<number>;
}

export interface ChurnScoreRecord {
  tenant: string;
  userId: string;
  risk: number;
  band: 'low' | 'medium' | 'high';
  factors: Array<{ feature: string; value: number; contribution: number }>;
  scoredAt: number;
  modelVersion: string;
  /** An alert was sent for the current episode above the threshold (reset below threshold - hysteresis). */
  alerted: boolean;
}

export interface ChurnScoreRepository {
  upsertMany(records: readonly ChurnScoreRecord[]): Promise<void>;
  getMany(tenant: string, userIds: readonly string[]): Promise<Map<string, ChurnScoreRecord>>;
  /** Highest risk first (ties by user id), from after `after` (keyset pagination). */
  listAtRisk(
    tenant: string,
    minRisk: number,
    limit: number,
    after?: { risk: number; userId: string },
  ): Promise<ChurnScoreRecord[]>;
  /** Right to be forgotten: deletes these users' scores; returns how many there were. */
  deleteMany(tenant: string, userIds: readonly string[]): Promise<number>;
}

/** Where one user's messages lie in a JetStream stream, so they can be erased without a scan. */
export interface MessagePosition {
  tenant: string;
  userId: string;
  stream: string;
  seq: number;
}

/**
 * The index of user-bearing stream messages: each publisher records the positions of what it publishes
 * about a user (ingest: raw and normalized events; feature: user notifications), and on a forget request
 * takes (reads and deletes) that user's positions in its streams to erase them.
 */
export interface MessageIndexRepository {
  /** Records positions, dated now (retention prunes them by that date). */
  record(positions: readonly MessagePosition[]): Promise<void>;
  take(tenant: string, userId: string, streams: readonly string[]): Promise<Array<{ stream: string; seq: number }>>;
  /**
   * Retention: deletes at most `limit` positions in `stream` recorded before `recordedBeforeMs` (their
   * messages have aged out of the stream); `more` says whether any are left.
   */
  pruneBefore(stream: string, recordedBeforeMs: number, limit: number): Promise<{ deleted: number; more: boolean }>;
}

/**
 * Forget markers: that a user was forgotten, and when, so that their events still in flight (or replayed)
 * are dropped instead of re-creating their data. Keyed by `userKey`, a keyed hash of the user id (the
 * caller's: the store never sees the id), kept for a bounded retention.
 */
export interface ForgottenRepository {
  /** Records the marker, or moves it later (a repeated request). */
  mark(tenant: string, userKey: string, forgottenAtMs: number): Promise<void>;
  /** The markers among `userKeys`: userKey -> forgotten at. */
  getMany(tenant: string, userKeys: readonly string[]): Promise<Map<string, number>>;
  /** Every marker of a tenant (few: one per forget request within the retention). */
  list(tenant: string): Promise<Map<string, number>>;
  /** Retention: deletes markers (of every tenant) set before `forgottenBeforeMs`. */
  pruneBefore(forgottenBeforeMs: number): Promise<{ deleted: number }>;
}

export interface Store {
  readonly kind: 'sqlite' | 'mongodb';
  readonly events: EventRepository;
  readonly items: ItemRepository;
  readonly documents: DocumentRepository;
  readonly churnScores: ChurnScoreRepository;
  readonly messages: MessageIndexRepository;
  readonly forgotten: ForgottenRepository;
  /**
   * After erasing personal data: makes sure no copy of it is left in the store's files (SQLite: deleted
   * rows are overwritten as they go, secure_delete, and the write-ahead log is checkpointed and truncated).
   */
  scrub(): Promise<void>;
  /** Throws StoreUnavailableError when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  override readonly name: string = 'StoreError';
}

/** The store cannot be reached or is locked; retrying later may succeed. */
export class StoreUnavailableError extends StoreError {
  override readonly name = 'StoreUnavailableError';
}
