import { LruCache } from '@aisle/contracts';
import type { NormalizedEvent, NormalizedItem, PayloadFormat, ProtoFields, Validated } from './validation';
import {
  formatOf,
  rejectionOf,
  userNamedBy,
  validateEventJson,
  validateEventProto,
  validateItemJson,
  validateItemProto,
} from './validation';

/** Where validated input is stored; idempotent by (tenant, id). */
export interface IngestRepository {
  /** `conflicting`: indices of events whose id is already stored (or earlier in `events`) with other content. */
  insertEvents(events: readonly NormalizedEvent[]): Promise<{ inserted: number; conflicting: number[] }>;
  upsertItems(items: readonly NormalizedItem[]): Promise<{ written: number }>;
  /** The stored (latest) version of each of the tenant's `itemIds` that the catalog holds. */
  currentItems(tenant: string, itemIds: readonly string[]): Promise<ReadonlyMap<string, NormalizedItem>>;
  /**
   * Which of `itemIds` the tenant's catalog holds, and how many items it holds in all (-1 when
   * `skipCount`: the caller still knows it).
   */
  catalogState(
    tenant: string,
    itemIds: readonly string[],
    skipCount?: boolean,
  ): Promise<{ count: number; existing: ReadonlySet<string> }>;
}

/** Decodes binary protobuf payloads (the transport adapter provides the generated codec). */
export interface ProtoDecoder {
  decodeEvent(data: Uint8Array): ProtoFields;
  decodeItem(data: Uint8Array): ProtoFields;
}

export interface RawInput {
  readonly data: Uint8Array;
  readonly contentType: string | undefined;
  /** The event type named by the subject (`aisle.clickstream.v1.<type>`), if any. */
  readonly subjectType?: string | undefined;
  /** The tenant the subject binds (`aisle.clickstream.v1.<type>.<tenant>`, `aisle.catalog.v1.upsert.<tenant>`). */
  readonly subjectTenant?: string | undefined;
}

export interface IngestOptions {
  clock?: () => number;
  /** Most items one tenant's catalog may hold: every service that keeps a catalog in memory relies on it. */
  maxItemsPerTenant?: number;
  /** Whether a tenant is declared (AISLE_TENANTS, the tenant bucket); input for others is rejected. */
  isDeclared?: (tenant: string) => boolean;
  /**
   * Input from the bus must arrive on a tenant's subject (`AISLE_INGEST_SUBJECT_TENANT`): the tenant is then
   * the one the producer's NATS user may publish for, never a payload's claim. gRPC input is bound by its
   * caller instead.
   */
  requireSubjectTenant?: boolean;
}

export interface IngestStats {
  accepted: number;
  rejected: number;
  stored: number;
}

/**
 * Validates, normalizes and stores producer input. Transport-free: adapters feed it raw payloads (NATS)
 * or decoded messages (gRPC) and publish what it accepts.
 */
const CONFLICT = rejectionOf('event_id', 'already stored with different content');

export class IngestService {
  private readonly clock: () => number;
  private readonly maxItemsPerTenant: number;
  private readonly isDeclared: (tenant: string) => boolean;
  private readonly requireSubjectTenant: boolean;

  constructor(
    private readonly repo: IngestRepository,
    private readonly decoder: ProtoDecoder,
    opts: IngestOptions = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.maxItemsPerTenant = opts.maxItemsPerTenant ?? 1_000_000;
    this.isDeclared = opts.isDeclared ?? (() => true);
    this.requireSubjectTenant = opts.requireSubjectTenant ?? false;
  }

  /** Input naming an undeclared tenant is rejected with that reason (dead-lettered, or in Track's answer). */
  private declared<T extends { tenant: string }>(results: Array<Validated<T>>): Array<Validated<T>> {
    return results.map((r) =>
      r.ok && !this.isDeclared(r.value.tenant)
        ? rejectionOf(
            'tenant',
            `'${r.value.tenant}' is not a declared tenant (AISLE_TENANTS or the aisle-tenants bucket)`,
          )
        : r,
    );
  }

  private readonly itemCounts = new LruCache<string, { at: number; count: number }>(1024);

  private decode<T>(
    input: RawInput,
    json: (d: Uint8Array, now: number) => Validated<T>,
    proto: (m: ProtoFields, now: number) => Validated<T>,
    decodeProto: (d: Uint8Array) => ProtoFields,
    now: number,
    example: string,
  ): Validated<T> {
    if (this.requireSubjectTenant && input.subjectTenant === undefined)
      return rejectionOf('subject', `names no tenant (publish to ${example}; AISLE_INGEST_SUBJECT_TENANT=required)`);
    const format: PayloadFormat | { unsupported: string } = formatOf(input.contentType);
    if (typeof format === 'object')
      return rejectionOf(
        'Content-Type',
        `unsupported '${format.unsupported}' (use application/json or application/x-protobuf)`,
      );
    if (format === 'json') return json(input.data, now);
    let message: ProtoFields;
    try {
      message = decodeProto(input.data);
    } catch (err) {
      return rejectionOf('payload', `invalid protobuf (${err instanceof Error ? err.message : String(err)})`);
    }
    return proto(message, now);
  }

  /** Validates raw clickstream payloads in order (one result per input). */
  /** The user a (rejected) raw event names, if it can be read at all: its dead letter is indexed by it. */
  userNamedBy(input: RawInput): { tenant: string; userId: string } | undefined {
    return userNamedBy(input.data, input.contentType, input.subjectTenant, (d) => this.decoder.decodeEvent(d));
  }

  validateEvents(inputs: readonly RawInput[]): Array<Validated<NormalizedEvent>> {
    const now = this.clock();
    return this.declared(
      inputs.map((i) =>
        this.decode(
          i,
          (d, n) => validateEventJson(d, n, i.subjectType, i.subjectTenant),
          (m, n) => validateEventProto(m, n, i.subjectType, i.subjectTenant),
          (d) => this.decoder.decodeEvent(d),
          now,
          'aisle.clickstream.v1.<type>.<tenant>',
        ),
      ),
    );
  }

  validateEventMessages(messages: readonly ProtoFields[]): Array<Validated<NormalizedEvent>> {
    const now = this.clock();
    return this.declared(messages.map((m) => validateEventProto(m, now)));
  }

  validateItems(inputs: readonly RawInput[]): Array<Validated<NormalizedItem>> {
    const now = this.clock();
    return this.declared(
      inputs.map((i) =>
        i.subjectType !== undefined && i.subjectType !== 'upsert'
          ? rejectionOf('subject', `'${i.subjectType.slice(0, 32)}' is not a catalog operation (upsert)`)
          : this.decode(
              i,
              (d, n) => validateItemJson(d, n, i.subjectTenant),
              (m, n) => validateItemProto(m, n, i.subjectTenant),
              (d) => this.decoder.decodeItem(d),
              now,
              'aisle.catalog.v1.upsert.<tenant>',
            ),
      ),
    );
  }

  validateItemMessages(messages: readonly ProtoFields[]): Array<Validated<NormalizedItem>> {
    const now = this.clock();
    return this.declared(messages.map((m) => validateItemProto(m, now)));
  }

  /**
   * Stores the valid events of a batch (each (tenant, event id) once, even when repeated in the batch
   * or already stored) and returns the results with conflicts turned into rejections: an event id
   * already stored with other content is a producer bug that must reach the dead-letter stream, not a
   * re-send to drop silently. Throws when the store fails: nothing of the batch may then be acknowledged.
   */
  async storeEvents(
    validated: ReadonlyArray<Validated<NormalizedEvent>>,
  ): Promise<IngestStats & { results: Array<Validated<NormalizedEvent>> }> {
    const valid: NormalizedEvent[] = [];
    const positions: number[] = [];
    validated.forEach((r, i) => {
      if (!r.ok) return;
      valid.push(r.value);
      positions.push(i);
    });
    const { inserted, conflicting } =
      valid.length > 0 ? await this.repo.insertEvents(valid) : { inserted: 0, conflicting: [] };
    const results = [...validated];
    for (const k of conflicting) results[positions[k] as number] = CONFLICT;
    const rejected = results.filter((r) => !r.ok).length;
    return { accepted: results.length - rejected, rejected, stored: inserted, results };
  }

  /**
   * Refuses new items of a tenant whose catalog is full (updates of its items still pass), so that no
   * producer can grow the catalogs that ranking and embedding-inference hold in memory without limit.
   */
  async admitItems(results: ReadonlyArray<Validated<NormalizedItem>>): Promise<Array<Validated<NormalizedItem>>> {
    const byTenant = new Map<string, string[]>();
    for (const r of results)
      if (r.ok) byTenant.set(r.value.tenant, [...(byTenant.get(r.value.tenant) ?? []), r.value.itemId]);
    const room = new Map<string, { left: number; known: Set<string> }>();
    for (const [tenant, ids] of byTenant) {
      const { count, existing } = await this.catalogState(tenant, ids);
      room.set(tenant, { left: this.maxItemsPerTenant - count, known: new Set(existing) });
    }
    return results.map((r) => {
      if (!r.ok) return r;
      const t = room.get(r.value.tenant) as { left: number; known: Set<string> };
      if (t.known.has(r.value.itemId)) return r;
      if (t.left <= 0)
        return rejectionOf(
          'item_id',
          `new item refused: the tenant's catalog holds its maximum of ${this.maxItemsPerTenant} items`,
        );
      t.left -= 1;
      t.known.add(r.value.itemId);
      this.counted(r.value.tenant, 1);
      return r;
    });
  }

  /**
   * The tenant's item count is read from the store at most once a minute (counting a large catalog is
   * not free) and advanced by the new items admitted in between; which ids exist is always asked.
   */
  private async catalogState(
    tenant: string,
    ids: readonly string[],
  ): Promise<{ count: number; existing: ReadonlySet<string> }> {
    const cached = this.itemCounts.get(tenant);
    const state = await this.repo.catalogState(tenant, ids, cached && this.clock() - cached.at < 60_000);
    if (state.count >= 0) this.itemCounts.set(tenant, { at: this.clock(), count: state.count });
    return { count: this.itemCounts.get(tenant)?.count ?? 0, existing: state.existing };
  }

  private counted(tenant: string, n: number): void {
    const c = this.itemCounts.get(tenant);
    if (c) c.count += n;
  }

  async storeItems(
    results: ReadonlyArray<Validated<NormalizedItem>>,
  ): Promise<IngestStats & { results: ReadonlyArray<Validated<NormalizedItem>> }> {
    const valid = results.flatMap((r) => (r.ok ? [r.value] : []));
    const { written } = valid.length > 0 ? await this.repo.upsertItems(valid) : { written: 0 };
    // What goes on to the accepted catalog is the stored version: an update older than the stored one (a
    // late re-send) must not replace the newer item there, where only the last message per item is kept.
    const ids = new Map<string, Set<string>>();
    for (const i of valid) ids.set(i.tenant, (ids.get(i.tenant) ?? new Set()).add(i.itemId));
    const current = new Map<string, ReadonlyMap<string, NormalizedItem>>();
    for (const [tenant, set] of ids) current.set(tenant, await this.repo.currentItems(tenant, [...set]));
    const latest = results.map((r) =>
      r.ok ? { ok: true as const, value: current.get(r.value.tenant)?.get(r.value.itemId) ?? r.value } : r,
    );
    return { accepted: valid.length, rejected: results.length - valid.length, stored: written, results: latest };
  }
}
