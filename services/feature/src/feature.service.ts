import { InvalidArgumentError, LruCache } from '@aisle/contracts';
import {
  applyEvent,
  coVisitPartners,
  FEATURE_RULES,
  itemsTouched,
  itemView,
  newUser,
  userView,
  withdrawCoVisits,
  type CatalogInfo,
  type FeatureEvent,
  type ItemFeaturesView,
  type ItemState,
  type TenantMeta,
  type UserFeaturesView,
  type UserState,
} from './features';

export interface FeatureUnitOfWork {
  getUsers(tenant: string, ids: readonly string[]): Promise<Map<string, UserState>>;
  getItems(tenant: string, ids: readonly string[]): Promise<Map<string, ItemState>>;
  getMeta(tenant: string): Promise<TenantMeta | undefined>;
  putUsers(tenant: string, users: ReadonlyMap<string, UserState>): Promise<void>;
  putItems(tenant: string, items: ReadonlyMap<string, ItemState>): Promise<void>;
  putMeta(tenant: string, meta: TenantMeta): Promise<void>;
  deleteUsers(tenant: string, ids: readonly string[]): Promise<void>;
  /** Marks the events applied in one round trip; returns the ids not applied before. */
  markApplied(tenant: string, eventIds: readonly string[]): Promise<Set<string>>;
}

export interface FeatureRepository {
  transact<R>(fn: (tx: FeatureUnitOfWork) => Promise<R>): Promise<R>;
  getUsers(tenant: string, ids: readonly string[]): Promise<Map<string, UserState>>;
  /** Without co-visits (`withCoVisits` false) only the small part of each item's state is read. */
  getItems(tenant: string, ids: readonly string[], withCoVisits: boolean): Promise<Map<string, ItemState>>;
  getMeta(tenant: string): Promise<TenantMeta | undefined>;
  scanItems(tenant: string): AsyncIterable<{ id: string; doc: ItemState }>;
  listUserIds(tenant: string, after: string, limit: number): Promise<string[]>;
}

export interface CatalogEntry extends CatalogInfo {
  title: string;
  brand: string;
  inStock: boolean;
}

export interface CatalogReader {
  getMany(tenant: string, ids: readonly string[]): Promise<Map<string, CatalogEntry>>;
  scan(tenant: string): AsyncIterable<{ itemId: string; category: string }>;
}

export interface PopularItem {
  itemId: string;
  popularity7d: number;
  category: string;
}

export interface UserChange {
  tenant: string;
  userId: string;
  eventTime: number;
  eventType: string;
}

export interface ApplyResult {
  applied: number;
  duplicates: number;
  changedUsers: UserChange[];
}

export interface ItemFeatures extends ItemFeaturesView {
  inCatalog: boolean;
  title: string;
  category: string;
  brand: string;
  price: number;
  inStock: boolean;
}

export const MAX_IDS_PER_CALL = 1000;

function checkIds(field: string, ids: readonly string[]): void {
  if (ids.length === 0) throw new InvalidArgumentError(field, 'at least one id required');
  if (ids.length > MAX_IDS_PER_CALL) throw new InvalidArgumentError(field, `more than ${MAX_IDS_PER_CALL} ids`);
  ids.forEach((id, i) => {
    if (!id) throw new InvalidArgumentError(`${field}[${i}]`, 'must not be empty');
    if (id.length > 128) throw new InvalidArgumentError(`${field}[${i}]`, 'longer than 128 characters');
  });
}

function groupByTenant(events: readonly FeatureEvent[]): Map<string, FeatureEvent[]> {
  const out = new Map<string, FeatureEvent[]>();
  for (const e of events) {
    const list = out.get(e.tenant) ?? [];
    list.push(e);
    out.set(e.tenant, list);
  }
  return out;
}

export interface ItemStatsEntry {
  itemId: string;
  popularity7d: number;
  ctr: number;
  conversionRate: number;
}

/** Every item's statistics at one watermark: by popularity (with categories) and by id (for paging). */
interface ItemSnapshot {
  at: number;
  asOf: number;
  popular: PopularItem[];
  byId: ItemStatsEntry[];
}

export const MAX_CO_VISIT_ITEMS = 20;

/** Keeps user and item features up to date from normalized events, exactly once per event id. */
/** ListUsers page tokens: the last id of the page, in a shape that garbage does not pass for. */
function tokenAfter(userId: string): string {
  return Buffer.from(JSON.stringify({ after: userId })).toString('base64url');
}

function afterOfToken(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string' && parsed.after !== '' && tokenAfter(parsed.after) === token)
      return parsed.after;
  } catch {
    // falls through to the error below
  }
  throw new InvalidArgumentError('page_token', 'not a token returned by ListUsers');
}

export class FeatureService {
  /** Per tenant; bounded, since the tenant comes from the request. */
  private readonly snapshots: LruCache<string, ItemSnapshot>;

  constructor(
    private readonly repo: FeatureRepository,
    private readonly catalog: CatalogReader,
    private readonly opts: { popularCacheMs: number; clock: () => number; popularCacheTenants?: number } = {
      popularCacheMs: 5000,
      clock: Date.now,
    },
  ) {
    this.snapshots = new LruCache(opts.popularCacheTenants ?? 32);
  }

  /**
   * The tenant's item statistics, recomputed at most every `popularCacheMs` (a scan of its item features)
   * and kept for the `popularCacheTenants` (32) most recently asked tenants.
   */
  private async snapshot(tenant: string): Promise<ItemSnapshot> {
    const cached = this.snapshots.get(tenant);
    if (cached && this.opts.clock() - cached.at <= this.opts.popularCacheMs) return cached;
    const asOf = (await this.repo.getMeta(tenant))?.watermark ?? 0;
    const categories = new Map<string, string>();
    for await (const c of this.catalog.scan(tenant)) categories.set(c.itemId, c.category);
    const popular: PopularItem[] = [];
    const byId: ItemStatsEntry[] = [];
    for await (const { id, doc } of this.repo.scanItems(tenant)) {
      const v = itemView(id, doc, asOf, 0);
      byId.push({ itemId: id, popularity7d: v.popularity7d, ctr: v.ctr, conversionRate: v.conversionRate });
      if (v.popularity7d > 0)
        popular.push({ itemId: id, popularity7d: v.popularity7d, category: categories.get(id) ?? '' });
    }
    popular.sort((a, b) => b.popularity7d - a.popularity7d || (a.itemId < b.itemId ? -1 : 1));
    byId.sort((a, b) => (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0));
    const next = { at: this.opts.clock(), asOf, popular, byId };
    // An empty snapshot costs nothing to recompute, and caching it would hide a tenant's first events.
    if (byId.length > 0) this.snapshots.set(tenant, next);
    return next;
  }

  /**
   * Items by 7-day decayed popularity at the watermark, optionally under a category prefix, from the
   * tenant's snapshot.
   */
  async listPopular(tenant: string, category: string, limit: number): Promise<{ items: PopularItem[]; asOf: number }> {
    if (limit < 0 || limit > 500) throw new InvalidArgumentError('limit', 'must be between 0 and 500');
    if (category.length > 512) throw new InvalidArgumentError('category', 'longer than 512 characters');
    const n = limit || 50;
    const snap = await this.snapshot(tenant);
    const prefix = category.trim();
    const matching = prefix
      ? snap.popular.filter((i) => i.category === prefix || i.category.startsWith(`${prefix} > `))
      : snap.popular;
    return { items: matching.slice(0, n), asOf: snap.asOf };
  }

  /** Every item's statistics in id order, a page at a time; the token is the last id of the previous page. */
  async listItemStats(
    tenant: string,
    pageSize: number,
    pageToken: string,
  ): Promise<{ items: ItemStatsEntry[]; nextPageToken: string; asOf: number }> {
    if (pageSize < 0 || pageSize > 10_000) throw new InvalidArgumentError('page_size', 'must be between 1 and 10000');
    const size = pageSize || 5000;
    const after = pageToken ? Buffer.from(pageToken, 'base64url').toString('utf8') : '';
    const snap = await this.snapshot(tenant);
    // First index with an id after the token (ids are sorted).
    let lo = 0;
    let hi = snap.byId.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((snap.byId[mid] as ItemStatsEntry).itemId <= after) lo = mid + 1;
      else hi = mid;
    }
    const items = snap.byId.slice(lo, lo + size);
    const more = lo + size < snap.byId.length;
    return {
      items,
      nextPageToken: more ? Buffer.from((items[items.length - 1] as ItemStatsEntry).itemId).toString('base64url') : '',
      asOf: snap.asOf,
    };
  }

  /** One user's features with the co-visits of their most recent distinct items (one round trip for ranking). */
  async getUserContext(
    tenant: string,
    userId: string,
    opts: { recentLimit: number; coVisitItems: number; coVisitLimit: number },
  ): Promise<{
    user: UserFeaturesView;
    coVisits: Array<{ itemId: string; coVisited: ItemFeaturesView['coVisited'] }>;
    asOf: number;
  }> {
    if (!userId) throw new InvalidArgumentError('user_id', 'required');
    if (userId.length > 128) throw new InvalidArgumentError('user_id', 'longer than 128 characters');
    if (opts.recentLimit < 0 || opts.recentLimit > FEATURE_RULES.recentLimit)
      throw new InvalidArgumentError('recent_limit', `must be between 0 and ${FEATURE_RULES.recentLimit}`);
    if (opts.coVisitItems < 0 || opts.coVisitItems > MAX_CO_VISIT_ITEMS)
      throw new InvalidArgumentError('co_visit_items', `must be between 0 and ${MAX_CO_VISIT_ITEMS}`);
    if (opts.coVisitLimit < 0 || opts.coVisitLimit > 100)
      throw new InvalidArgumentError('co_visit_limit', 'must be between 0 and 100');
    const [states, meta] = await Promise.all([this.repo.getUsers(tenant, [userId]), this.repo.getMeta(tenant)]);
    const asOf = meta?.watermark ?? 0;
    const state = states.get(userId);
    const user = userView(userId, state, asOf, opts.recentLimit);
    const seeds: string[] = [];
    if (state && opts.coVisitItems > 0 && opts.coVisitLimit > 0)
      for (let i = state.recent.length - 1; i >= 0 && seeds.length < opts.coVisitItems; i--) {
        const id = (state.recent[i] as UserState['recent'][number])[0];
        if (!seeds.includes(id)) seeds.push(id);
      }
    const items = seeds.length > 0 ? await this.repo.getItems(tenant, seeds, true) : new Map<string, ItemState>();
    const coVisits = seeds.map((id) => ({
      itemId: id,
      coVisited: itemView(id, items.get(id), asOf, opts.coVisitLimit).coVisited,
    }));
    return { user, coVisits, asOf };
  }

  /** A page of user ids in id order; the token names the last id of the previous page. */
  async listUsers(
    tenant: string,
    pageSize: number,
    pageToken: string,
  ): Promise<{ userIds: string[]; nextPageToken: string }> {
    if (pageSize < 0 || pageSize > 5000) throw new InvalidArgumentError('page_size', 'must be between 1 and 5000');
    const size = pageSize || 1000;
    const after = pageToken ? afterOfToken(pageToken) : '';
    const ids = await this.repo.listUserIds(tenant, after, size + 1);
    const page = ids.slice(0, size);
    return { userIds: page, nextPageToken: ids.length > size ? tokenAfter(page[page.length - 1] as string) : '' };
  }

  /**
   * Applies a batch in order inside one transaction. Events already applied (redelivery, replay) are
   * skipped, so applying any stream twice changes nothing.
   */
  async applyBatch(events: readonly FeatureEvent[]): Promise<ApplyResult> {
    const byTenant = groupByTenant(events);
    const catalogs = new Map<string, Map<string, CatalogEntry>>();
    for (const [tenant, list] of byTenant) {
      catalogs.set(
        tenant,
        await this.catalog.getMany(tenant, [...new Set(list.filter((e) => e.itemId).map((e) => e.itemId))]),
      );
    }
    return this.repo.transact(async (tx) => {
      const result: ApplyResult = { applied: 0, duplicates: 0, changedUsers: [] };
      for (const [tenant, list] of byTenant) {
        const users = await tx.getUsers(tenant, [...new Set(list.map((e) => e.userId))]);
        const needed = new Set<string>();
        for (const e of list) for (const id of itemsTouched(e, users.get(e.userId))) needed.add(id);
        const items = await tx.getItems(tenant, [...needed]);
        const meta = (await tx.getMeta(tenant)) ?? { watermark: 0 };
        const changedUsers = new Map<string, UserState>();
        const changedItems = new Map<string, ItemState>();
        const latest = new Map<string, FeatureEvent>();
        const fresh = await tx.markApplied(
          tenant,
          list.map((e) => e.eventId),
        );
        for (const e of list) {
          // Deleting on first use makes a second copy of an event within the batch a duplicate too.
          if (!fresh.delete(e.eventId)) {
            result.duplicates += 1;
            continue;
          }
          const user = users.get(e.userId) ?? newUser(e.userId, e.occurredAt);
          users.set(e.userId, user);
          // Partners added to the recent list earlier in this batch may not be loaded yet.
          const touched = itemsTouched(e, user);
          const missing = touched.filter((id) => !items.has(id));
          if (missing.length > 0) for (const [id, s] of await tx.getItems(tenant, missing)) items.set(id, s);
          applyEvent(e, user, items, catalogs.get(tenant) ?? new Map());
          for (const id of touched) changedItems.set(id, items.get(id) as ItemState);
          changedUsers.set(e.userId, user);
          meta.watermark = Math.max(meta.watermark, e.occurredAt);
          const prev = latest.get(e.userId);
          if (!prev || e.occurredAt >= prev.occurredAt) latest.set(e.userId, e);
          result.applied += 1;
        }
        if (changedUsers.size > 0) {
          await tx.putUsers(tenant, changedUsers);
          await tx.putItems(tenant, changedItems);
          await tx.putMeta(tenant, meta);
        }
        for (const [userId, e] of latest)
          result.changedUsers.push({ tenant, userId, eventTime: e.occurredAt, eventType: e.type });
      }
      return result;
    });
  }

  /**
   * Right to be forgotten: deletes the user's features and takes back the co-visits their recent events
   * contributed, in one transaction. Returns the records erased (0 for an unknown user: idempotent) and
   * the event ids the user's state named (their applied markers are erased by the caller).
   */
  async forgetUser(tenant: string, userId: string): Promise<{ records: number; eventIds: string[] }> {
    return this.repo.transact(async (tx) => {
      const user = (await tx.getUsers(tenant, [userId])).get(userId);
      if (!user) return { records: 0, eventIds: [] };
      const items = await tx.getItems(tenant, coVisitPartners(user));
      withdrawCoVisits(user, items);
      if (items.size > 0) await tx.putItems(tenant, items);
      await tx.deleteUsers(tenant, [userId]);
      return { records: 1, eventIds: user.recent.map((r) => r[3]) };
    });
  }

  async getUserFeatures(
    tenant: string,
    userIds: readonly string[],
    recentLimit: number,
  ): Promise<{ users: UserFeaturesView[]; asOf: number }> {
    checkIds('user_ids', userIds);
    if (!(recentLimit >= 0 && recentLimit <= FEATURE_RULES.recentLimit))
      throw new InvalidArgumentError('recent_limit', `must be between 0 and ${FEATURE_RULES.recentLimit}`);
    const [states, meta] = await Promise.all([this.repo.getUsers(tenant, userIds), this.repo.getMeta(tenant)]);
    const asOf = meta?.watermark ?? 0;
    return { users: userIds.map((id) => userView(id, states.get(id), asOf, recentLimit)), asOf };
  }

  async getItemFeatures(
    tenant: string,
    itemIds: readonly string[],
    coVisitLimit: number,
  ): Promise<{ items: ItemFeatures[]; asOf: number }> {
    checkIds('item_ids', itemIds);
    if (coVisitLimit < 0 || coVisitLimit > 100)
      throw new InvalidArgumentError('co_visit_limit', 'must be between 0 and 100');
    const [states, meta, catalog] = await Promise.all([
      this.repo.getItems(tenant, itemIds, coVisitLimit > 0),
      this.repo.getMeta(tenant),
      this.catalog.getMany(tenant, itemIds),
    ]);
    const asOf = meta?.watermark ?? 0;
    const items = itemIds.map((id) => {
      const view = itemView(id, states.get(id), asOf, coVisitLimit);
      const c = catalog.get(id);
      return {
        ...view,
        known: view.known || c !== undefined,
        inCatalog: c !== undefined,
        title: c?.title ?? '',
        category: c?.category ?? '',
        brand: c?.brand ?? '',
        price: c?.price ?? 0,
        inStock: c?.inStock ?? false,
      };
    });
    return { items, asOf };
  }
}
