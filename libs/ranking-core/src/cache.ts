import { StaleFallback } from './context';
import { USER_CONTEXT_OPTIONS } from './sources/co-visitation';
import type {
  CallBudget,
  ChurnRiskPort,
  CoVisitationPort,
  Neighbor,
  Retrieved,
  SequenceRetrievalPort,
  UserContext,
  UserContextPort,
} from './ports';

interface Entry<V> {
  value: V | undefined;
  /** When the value stops being fresh. */
  expires: number;
  weight: number;
  /** Generation of the last invalidation of this key (a tombstone when `value` is undefined). */
  invalidated: number;
}

export interface CacheOptions {
  /** Most keys kept (least recently used go first); 0 turns the cache off. */
  maxEntries: number;
  /** With `weigh`: the most total weight kept (e.g. interactions held), least recently used going first. */
  maxWeight?: number;
  weigh?: (value: unknown) => number;
  /** How long a value is served without asking the dependency again. */
  ttlMs: number;
  /**
   * Up to this share of the TTL is taken off each value at random (0.2: each lives 80-100 % of it), so
   * that values loaded together (a warm-up, a model change) do not all expire, and reload, together.
   */
  ttlJitter?: number;
  clock?: () => number;
  random?: () => number;
}

/**
 * A bounded LRU of a dependency's answers with a time to live. Values past their TTL stay as stale
 * fallbacks for when the dependency fails. `invalidate` drops a key at once; an answer to a call that
 * started before the invalidation is not stored (it may predate the change).
 */
export class TtlCache<V> {
  private readonly map = new Map<string, Entry<V>>();
  private gen = 0;
  private cleared = 0;
  private weight = 0;
  private readonly clock: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.clock = opts.clock ?? (() => Date.now());
  }

  get size(): number {
    return this.map.size;
  }

  /** Total weight held (0 without `weigh`). */
  get totalWeight(): number {
    return this.weight;
  }

  /** A value younger than the TTL, refreshed as most recently used. */
  fresh(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e || e.value === undefined || this.clock() >= e.expires) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** The keys holding a value (fresh or not), least recently used first. */
  *keys(): IterableIterator<string> {
    for (const [key, e] of this.map) if (e.value !== undefined) yield key;
  }

  /** Any value still held, however old (a fallback while the dependency is away). */
  stale(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  /** The generation to pass to `put` for a call starting now. */
  generation(): number {
    return this.gen;
  }

  put(key: string, value: V, startedAt: number): void {
    if (this.opts.maxEntries <= 0 || startedAt < this.cleared) return;
    const e = this.map.get(key);
    if (e && e.invalidated > startedAt) return;
    const weight = this.opts.weigh ? this.opts.weigh(value) : 0;
    if (this.opts.maxWeight !== undefined && weight > this.opts.maxWeight) return;
    this.remove(key);
    const jitter = this.opts.ttlJitter ? this.opts.ttlJitter * (this.opts.random ?? Math.random)() : 0;
    const expires = this.clock() + this.opts.ttlMs * (1 - jitter);
    this.map.set(key, { value, expires, invalidated: e?.invalidated ?? 0, weight });
    this.weight += weight;
    this.trim();
  }

  invalidate(key: string): void {
    this.gen++;
    this.remove(key);
    if (this.opts.maxEntries > 0) {
      this.map.set(key, { value: undefined, expires: 0, invalidated: this.gen, weight: 0 });
      this.trim();
    }
  }

  clear(): void {
    this.cleared = ++this.gen;
    this.map.clear();
    this.weight = 0;
  }

  private remove(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.weight -= e.weight;
    this.map.delete(key);
  }

  private trim(): void {
    const maxWeight = this.opts.maxWeight ?? Number.POSITIVE_INFINITY;
    while (this.map.size > this.opts.maxEntries || this.weight > maxWeight) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value);
    }
  }
}

/** Runs `fetch` through a cache of one value per key, falling back to a stale value on failure. */
async function cachedCall<V>(cache: TtlCache<V>, key: string, fetch: () => Promise<V>): Promise<V> {
  const hit = cache.fresh(key);
  if (hit !== undefined) return hit;
  const gen = cache.generation();
  try {
    const v = await fetch();
    cache.put(key, v, gen);
    return v;
  } catch (err) {
    const stale = cache.stale(key);
    if (stale !== undefined) throw new StaleFallback(stale, err);
    throw err;
  }
}

/** Runs a batch `fetch` for the keys the cache lacks; on failure, the stale values it holds (if any). */
async function cachedBatch<V>(
  cache: TtlCache<V>,
  ids: readonly string[],
  keyOf: (id: string) => string,
  fetch: (missing: string[]) => Promise<ReadonlyMap<string, V>>,
  absent: V | undefined,
): Promise<ReadonlyMap<string, V>> {
  const out = new Map<string, V>();
  const missing: string[] = [];
  for (const id of ids) {
    const v = cache.fresh(keyOf(id));
    if (v !== undefined) {
      if (v !== absent) out.set(id, v);
    } else missing.push(id);
  }
  if (missing.length === 0) return out;
  const gen = cache.generation();
  try {
    const got = await fetch(missing);
    for (const id of missing) {
      const v = got.get(id);
      if (v !== undefined) out.set(id, v);
      // Remember "nothing known" too, so unknown ids do not go to the dependency on every request.
      const stored = v ?? absent;
      if (stored !== undefined) cache.put(keyOf(id), stored, gen);
    }
    return out;
  } catch (err) {
    let any = false;
    for (const id of missing) {
      const v = cache.stale(keyOf(id));
      if (v === undefined) continue;
      any = true;
      if (v !== absent) out.set(id, v);
    }
    if (any || out.size > 0) throw new StaleFallback<ReadonlyMap<string, V>>(out, err);
    throw err;
  }
}

/** Loads a key again off the request path (a `UserWarmer` hands its background refresh in). */
export type Reloader = (key: string, reload: (budget: CallBudget) => Promise<void>) => void;

/** A port answering from a cache of its dependency's answers, under the dependency's name. */
abstract class CachingPort<V> {
  readonly cache: TtlCache<V>;
  readonly dependency: string | undefined;
  /**
   * Stale-while-reload: with a reloader, a value past its TTL answers once more while the reloader loads
   * it again in the background (the TTL bounds announcements missed, not ones made); without one, an
   * expired value is a miss.
   */
  reloader: Reloader | undefined;

  constructor(port: { readonly dependency?: string }, opts: CacheOptions) {
    this.cache = new TtlCache(opts);
    this.dependency = port.dependency;
  }

  /** A fresh value; else, with a reloader, the expired one while `reload` runs in the background. */
  protected freshOrReloading(key: string, reload: (budget: CallBudget) => Promise<void>): V | undefined {
    const hit = this.cache.fresh(key);
    if (hit !== undefined || !this.reloader) return hit;
    const old = this.cache.stale(key);
    if (old !== undefined) this.reloader(key, reload);
    return old;
  }
}

/** What a cached user context holds, in interactions, affinities and co-visits (for `maxWeight`). */
export function userContextWeight(value: unknown): number {
  const c = value as UserContext;
  let n = 1 + (c.user ? c.user.recent.length + c.user.affinity.length + c.user.queries.length : 0);
  for (const list of c.coVisits.values()) n += list.length;
  return n;
}

/**
 * User contexts cached until the user changes (`invalidate`, on feature's `user_updated`) or the TTL passes
 * (stale-while-reload with a `reloader`: see CachingPort).
 */
export class CachedUserContext extends CachingPort<UserContext> implements UserContextPort {
  constructor(
    private readonly port: UserContextPort,
    opts: CacheOptions,
  ) {
    super(port, { weigh: userContextWeight, ...opts });
  }

  peek(userId: string): UserContext | undefined {
    return this.freshOrReloading(userId, async (b) => {
      await this.userContext(userId, USER_CONTEXT_OPTIONS, b);
    });
  }

  /** The users whose context is held. */
  cachedUsers(): IterableIterator<string> {
    return this.cache.keys();
  }

  userContext(
    userId: string,
    opts: { coVisitItems: number; coVisitLimit: number },
    budget: CallBudget,
  ): Promise<UserContext> {
    return cachedCall(this.cache, userId, () => this.port.userContext(userId, opts, budget));
  }

  invalidate(userId: string): void {
    this.cache.invalidate(userId);
  }

  clear(): void {
    this.cache.clear();
  }
}

const NO_NEIGHBORS: readonly Neighbor[] = Object.freeze([]);

const coVisitKey = (limit: number, itemId: string): string => `${limit}\u001f${itemId}`;

/** Co-visit lists per item and limit, for a TTL (they move slowly). */
export class CachedCoVisitation extends CachingPort<readonly Neighbor[]> implements CoVisitationPort {
  /**
   * Lists handed to the reloader, until when they count as being loaded again: requests that find them
   * expired meanwhile do not ask again (each request names a different set of expired items, so the
   * reloader's keys alone did not tell that a list was already on its way, and busy items were fetched
   * once per request until their reload landed). A reload that lands frees its lists; one that fails, or
   * that the reloader dropped, is asked again once the guard has passed (not by every request while feature
   * is down). Bounded: past `maxEntries` guards, the lapsed ones are swept.
   */
  private readonly reloading = new Map<string, number>();
  private readonly clock: () => number;
  private readonly reloadGuardMs: number;
  private readonly maxGuards: number;

  constructor(
    private readonly port: CoVisitationPort,
    opts: CacheOptions,
  ) {
    super(port, opts);
    this.clock = opts.clock ?? (() => Date.now());
    this.reloadGuardMs = Math.min(opts.ttlMs, 10_000);
    this.maxGuards = Math.max(1, opts.maxEntries);
  }

  /**
   * Every item's list from memory, or undefined if one is not held. With a reloader, lists past their
   * TTL answer once more while one background call loads them again (co-visits move slowly; waiting on
   * feature for them put a dependent call on the request path every TTL for every item asked of Rank).
   */
  peek(itemIds: readonly string[], limit: number): ReadonlyMap<string, readonly Neighbor[]> | undefined {
    const out = new Map<string, readonly Neighbor[]>();
    const reloader = this.reloader;
    let expired: string[] | undefined;
    for (const id of itemIds) {
      const key = coVisitKey(limit, id);
      let list = this.cache.fresh(key);
      if (list === undefined && reloader) {
        list = this.cache.stale(key);
        if (list !== undefined) (expired ??= []).push(id);
      }
      if (list === undefined) return undefined;
      if (list !== NO_NEIGHBORS) out.set(id, list);
    }
    if (expired && reloader) this.reload(expired, limit, reloader);
    return out;
  }

  /** Hands the expired lists that no reload is loading yet to the reloader, under one guard. */
  private reload(expired: readonly string[], limit: number, reloader: Reloader): void {
    const now = this.clock();
    const until = now + this.reloadGuardMs;
    const ids = expired.filter((id) => (this.reloading.get(coVisitKey(limit, id)) ?? -Infinity) <= now);
    if (ids.length === 0) return;
    for (const id of ids) this.reloading.set(coVisitKey(limit, id), until);
    if (this.reloading.size > this.maxGuards)
      for (const [key, t] of this.reloading) if (t <= now) this.reloading.delete(key);
    reloader(`covisit\u001d${limit}\u001d${ids.join('\u001f')}`, async (b) => {
      await this.coVisited(ids, limit, b);
      // Landed: free the lists this reload guarded (a later reload's guard stays).
      for (const id of ids) {
        const key = coVisitKey(limit, id);
        if (this.reloading.get(key) === until) this.reloading.delete(key);
      }
    });
  }

  coVisited(
    itemIds: readonly string[],
    limit: number,
    budget: CallBudget,
  ): Promise<ReadonlyMap<string, readonly Neighbor[]>> {
    return cachedBatch(
      this.cache,
      itemIds,
      (id) => coVisitKey(limit, id),
      (missing) => this.port.coVisited(missing, limit, budget),
      NO_NEIGHBORS,
    );
  }
}

const retrievalKey = (history: readonly string[], k: number, exclude: readonly string[]): string =>
  `${k}\u001e${exclude.join('\u001f')}\u001e${history.join('\u001f')}`;

/**
 * Sequence retrievals per (history, k, exclusions), until the model changes (`clear`) or the TTL passes
 * (stale-while-reload with a `reloader`: a history's retrieval changes only with the model).
 */
export class CachedSequenceRetrieval extends CachingPort<Retrieved> implements SequenceRetrievalPort {
  constructor(
    private readonly port: SequenceRetrievalPort,
    opts: CacheOptions,
  ) {
    super(port, opts);
  }

  bySequence(
    history: readonly string[],
    k: number,
    exclude: readonly string[],
    budget: CallBudget,
  ): Promise<Retrieved> {
    return cachedCall(this.cache, retrievalKey(history, k, exclude), () =>
      this.port.bySequence(history, k, exclude, budget),
    );
  }

  peek(history: readonly string[], k: number, exclude: readonly string[]): Retrieved | undefined {
    return this.freshOrReloading(retrievalKey(history, k, exclude), async (b) => {
      await this.bySequence(history, k, exclude, b);
    });
  }

  clear(): void {
    this.cache.clear();
  }
}

/** Churn risks per user for a TTL (the churn service rescores users every few minutes). */
export class CachedChurnRisk extends CachingPort<{ risk: number | undefined }> implements ChurnRiskPort {
  constructor(
    private readonly port: ChurnRiskPort,
    opts: CacheOptions,
  ) {
    super(port, opts);
  }

  async risk(userId: string, budget: CallBudget): Promise<number | undefined> {
    const got = await cachedCall(this.cache, userId, async () => ({ risk: await this.port.risk(userId, budget) }));
    return got.risk;
  }
}
