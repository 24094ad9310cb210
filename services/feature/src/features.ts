import type { Event, EventType } from '@aisle/contracts';
import { addDecayed, DAY_MS, decayedAt, tauForHalfLife, type Decayed } from './decay';

/**
 * Feature definitions and their incremental update rules. Pure functions over plain JSON state, so the
 * same code serves live traffic, replays and tests.
 */

/** What feature reads of an event. */
export type FeatureEvent = Pick<
  Event,
  'tenant' | 'eventId' | 'type' | 'userId' | 'sessionId' | 'itemId' | 'query' | 'quantity' | 'price' | 'occurredAt'
>;

/** What the feature service needs to know of a catalog item. */
export interface CatalogInfo {
  category: string;
  price: number;
}

export const FEATURE_RULES = {
  recentLimit: 200,
  recentQueries: 20,
  sessionsTracked: 1000,
  categoriesKept: 64,
  coVisitKept: 100,
  coVisitWindowMs: 60 * 60 * 1000,
  affinityTauMs: tauForHalfLife(14 * DAY_MS),
  popularityTauMs: { d1: DAY_MS, d7: 7 * DAY_MS, d30: 30 * DAY_MS },
  /** Category affinity weight per event type. */
  affinityWeight: { view: 1, click: 1, add_to_cart: 3, remove_from_cart: 0, purchase: 5, search: 0 } satisfies Record<
    EventType,
    number
  >,
  /** Event types that count as co-visits (clicks usually precede a view of the same item). */
  coVisitTypes: ['view', 'add_to_cart', 'purchase'] as readonly EventType[],
  ctrPrior: { hits: 1, trials: 20 },
  conversionPrior: { hits: 0.5, trials: 50 },
} as const;

/** [item id, event type, occurred at, event id] */
export type RecentEntry = [string, EventType, number, string];

export interface PriceStats {
  n: number;
  sum: number;
  sumSq: number;
  min: number;
  max: number;
}

export interface UserState {
  userId: string;
  recent: RecentEntry[];
  counts: Record<EventType, number>;
  firstSeen: number;
  lastSeen: number;
  sessionIds: string[];
  sessions: number;
  purchases: number;
  units: number;
  spend: number;
  lastPurchaseAt: number | null;
  affinity: Record<string, Decayed>;
  prices: PriceStats | null;
  /** [query, occurred at] */
  queries: Array<[string, number]>;
}

export interface ItemState {
  itemId: string;
  pop: { d1?: Decayed; d7?: Decayed; d30?: Decayed };
  views: number;
  clicks: number;
  carts: number;
  purchases: number;
  firstEventAt: number;
  lastEventAt: number;
  coVisits: Record<string, number>;
}

export interface TenantMeta {
  watermark: number;
}

const emptyCounts = (): Record<EventType, number> => ({
  view: 0,
  click: 0,
  add_to_cart: 0,
  remove_from_cart: 0,
  purchase: 0,
  search: 0,
});

export function newUser(userId: string, at: number): UserState {
  return {
    userId,
    recent: [],
    counts: emptyCounts(),
    firstSeen: at,
    lastSeen: at,
    sessionIds: [],
    sessions: 0,
    purchases: 0,
    units: 0,
    spend: 0,
    lastPurchaseAt: null,
    affinity: dict(),
    prices: null,
    queries: [],
  };
}

export function newItem(itemId: string, at: number): ItemState {
  return {
    itemId,
    pop: {},
    views: 0,
    clicks: 0,
    carts: 0,
    purchases: 0,
    firstEventAt: at,
    lastEventAt: at,
    coVisits: dict(),
  };
}

/** Orders by time, then event id, so that equal timestamps sort the same way on every replay. */
function compareRecent(a: RecentEntry, b: RecentEntry): number {
  return a[2] - b[2] || (a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0);
}

/** Every prefix of a category path: "A > B" credits "A" and "A > B". */
export function categoryLevels(path: string): string[] {
  const parts = path.split(' > ').filter((p) => p.length > 0);
  return parts.map((_, i) => parts.slice(0, i + 1).join(' > '));
}

/**
 * A dictionary keyed by names producers choose (category paths, item ids): without a prototype, so that
 * `constructor` or `__proto__` are keys like any other rather than Object.prototype's members. State read
 * back from the store (JSON.parse: ordinary objects) is converted on first write.
 */
function dict<V>(from?: Record<string, V>): Record<string, V> {
  const d = Object.create(null) as Record<string, V>;
  if (from) for (const k of Object.keys(from)) d[k] = from[k] as V;
  return d;
}

function isDict(o: object): boolean {
  return Object.getPrototypeOf(o) === null;
}

function trimToLargest(map: Record<string, number>, keep: number): Record<string, number> {
  const entries = Object.entries(map);
  if (entries.length <= keep) return map;
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out = dict<number>();
  for (const [k, v] of entries.slice(0, keep)) out[k] = v;
  return out;
}

export function isItemEvent(e: FeatureEvent): boolean {
  return e.type !== 'search' && e.itemId !== '';
}

/** Item ids whose state an event will touch (its item and co-visit partners among the user's recent items). */
export function itemsTouched(e: FeatureEvent, user: UserState | undefined): string[] {
  if (!isItemEvent(e)) return [];
  const out = [e.itemId];
  if (user && FEATURE_RULES.coVisitTypes.includes(e.type)) {
    for (const [itemId, type, at] of user.recent) {
      if (
        itemId !== e.itemId &&
        FEATURE_RULES.coVisitTypes.includes(type) &&
        Math.abs(at - e.occurredAt) <= FEATURE_RULES.coVisitWindowMs
      )
        out.push(itemId);
    }
  }
  return out;
}

/**
 * Applies one event to the user's state and the touched items' states (mutating them). Must be called
 * at most once per event id: the caller guarantees that with the store's applied-markers.
 */
export function applyEvent(
  e: FeatureEvent,
  user: UserState,
  items: Map<string, ItemState>,
  catalog: ReadonlyMap<string, CatalogInfo>,
): void {
  const at = e.occurredAt;
  user.counts[e.type] += 1;
  user.firstSeen = Math.min(user.firstSeen, at);
  user.lastSeen = Math.max(user.lastSeen, at);
  if (e.sessionId && !user.sessionIds.includes(e.sessionId)) {
    user.sessions += 1;
    user.sessionIds.push(e.sessionId);
    if (user.sessionIds.length > FEATURE_RULES.sessionsTracked) user.sessionIds.shift();
  }
  if (e.type === 'search') {
    user.queries.push([e.query, at]);
    user.queries.sort((a, b) => a[1] - b[1]);
    if (user.queries.length > FEATURE_RULES.recentQueries)
      user.queries.splice(0, user.queries.length - FEATURE_RULES.recentQueries);
    return;
  }
  if (!e.itemId) return;

  const info = catalog.get(e.itemId);
  if (e.type === 'purchase') {
    user.purchases += 1;
    user.units += e.quantity;
    user.spend += e.price * e.quantity;
    user.lastPurchaseAt = Math.max(user.lastPurchaseAt ?? at, at);
  }
  const weight = FEATURE_RULES.affinityWeight[e.type];
  if (info?.category && weight > 0) {
    if (!isDict(user.affinity)) user.affinity = dict(user.affinity);
    for (const level of categoryLevels(info.category)) {
      user.affinity[level] = addDecayed(user.affinity[level], at, weight, FEATURE_RULES.affinityTauMs);
    }
    const names = Object.keys(user.affinity);
    if (names.length > FEATURE_RULES.categoriesKept) {
      const ref = Math.max(...names.map((n) => user.affinity[n]?.t ?? 0));
      names
        .sort(
          (a, b) =>
            decayedAt(user.affinity[a], ref, FEATURE_RULES.affinityTauMs) -
              decayedAt(user.affinity[b], ref, FEATURE_RULES.affinityTauMs) || (a < b ? -1 : 1),
        )
        .slice(0, names.length - FEATURE_RULES.categoriesKept)
        .forEach((n) => delete user.affinity[n]);
    }
  }
  const price = info && info.price > 0 ? info.price : e.price;
  if (price > 0 && e.type !== 'remove_from_cart') {
    const p = user.prices ?? { n: 0, sum: 0, sumSq: 0, min: price, max: price };
    p.n += 1;
    p.sum += price;
    p.sumSq += price * price;
    p.min = Math.min(p.min, price);
    p.max = Math.max(p.max, price);
    user.prices = p;
  }

  const item = items.get(e.itemId) ?? newItem(e.itemId, at);
  items.set(e.itemId, item);
  item.firstEventAt = Math.min(item.firstEventAt, at);
  item.lastEventAt = Math.max(item.lastEventAt, at);
  if (e.type === 'view') item.views += 1;
  else if (e.type === 'click') item.clicks += 1;
  else if (e.type === 'add_to_cart') item.carts += 1;
  else if (e.type === 'purchase') item.purchases += 1;
  if (e.type !== 'remove_from_cart') {
    const tau = FEATURE_RULES.popularityTauMs;
    item.pop = {
      d1: addDecayed(item.pop.d1, at, 1, tau.d1),
      d7: addDecayed(item.pop.d7, at, 1, tau.d7),
      d30: addDecayed(item.pop.d30, at, 1, tau.d30),
    };
  }

  // Co-visits: each pair of this user's events on two items within the window counts once, when the
  // later-arriving of the two is applied.
  if (FEATURE_RULES.coVisitTypes.includes(e.type)) {
    if (!isDict(item.coVisits)) item.coVisits = dict(item.coVisits);
    for (const partnerId of itemsTouched(e, user).slice(1)) {
      const partner = items.get(partnerId) ?? newItem(partnerId, at);
      items.set(partnerId, partner);
      if (!isDict(partner.coVisits)) partner.coVisits = dict(partner.coVisits);
      item.coVisits[partnerId] = (item.coVisits[partnerId] ?? 0) + 1;
      partner.coVisits[e.itemId] = (partner.coVisits[e.itemId] ?? 0) + 1;
      partner.coVisits = trimToLargest(partner.coVisits, FEATURE_RULES.coVisitKept);
    }
    item.coVisits = trimToLargest(item.coVisits, FEATURE_RULES.coVisitKept);
  }

  user.recent.push([e.itemId, e.type, at, e.eventId]);
  user.recent.sort(compareRecent);
  if (user.recent.length > FEATURE_RULES.recentLimit)
    user.recent.splice(0, user.recent.length - FEATURE_RULES.recentLimit);
}

/** Items whose co-visits a user's recent events contributed to (for `withdrawCoVisits`). */
export function coVisitPartners(user: UserState): string[] {
  return [...new Set(user.recent.filter((r) => FEATURE_RULES.coVisitTypes.includes(r[1])).map((r) => r[0]))];
}

/**
 * Right to be forgotten: takes back the co-visits the user's recent events contributed (each pair of
 * entries on two items within the window, as `applyEvent` counted them). Contributions of events older
 * than the recent list cannot be told apart any more and stay, anonymous, in the counts.
 */
export function withdrawCoVisits(user: UserState, items: ReadonlyMap<string, ItemState>): void {
  const entries = user.recent.filter((r) => FEATURE_RULES.coVisitTypes.includes(r[1]));
  const take = (from: string, partner: string): void => {
    const state = items.get(from);
    const n = state?.coVisits[partner];
    if (state === undefined || n === undefined) return;
    if (n <= 1) delete state.coVisits[partner];
    else state.coVisits[partner] = n - 1;
  };
  for (let j = 0; j < entries.length; j++)
    for (let i = 0; i < j; i++) {
      const [a, , ta] = entries[i] as RecentEntry;
      const [b, , tb] = entries[j] as RecentEntry;
      if (a === b || Math.abs(ta - tb) > FEATURE_RULES.coVisitWindowMs) continue;
      take(a, b);
      take(b, a);
    }
}

// ---- read models ----

export interface UserFeaturesView {
  userId: string;
  known: boolean;
  recent: Array<{ itemId: string; type: string; occurredAt: number }>;
  counts: Record<EventType, number>;
  firstSeenAt: number | undefined;
  lastSeenAt: number | undefined;
  sessions: number;
  purchases: number;
  unitsPurchased: number;
  spend: number;
  lastPurchaseAt: number | undefined;
  categoryAffinity: Array<{ category: string; score: number }>;
  priceBand: { count: number; min: number; max: number; mean: number; stddev: number } | undefined;
  recentQueries: string[];
}

export interface ItemFeaturesView {
  itemId: string;
  known: boolean;
  popularity1d: number;
  popularity7d: number;
  popularity30d: number;
  views: number;
  clicks: number;
  addToCarts: number;
  purchases: number;
  ctr: number;
  conversionRate: number;
  coVisited: Array<{ itemId: string; score: number }>;
  lastEventAt: number | undefined;
}

export function userView(
  userId: string,
  s: UserState | undefined,
  watermark: number,
  recentLimit: number,
): UserFeaturesView {
  if (!s) {
    return {
      userId,
      known: false,
      recent: [],
      counts: emptyCounts(),
      firstSeenAt: undefined,
      lastSeenAt: undefined,
      sessions: 0,
      purchases: 0,
      unitsPurchased: 0,
      spend: 0,
      lastPurchaseAt: undefined,
      categoryAffinity: [],
      priceBand: undefined,
      recentQueries: [],
    };
  }
  const limit = recentLimit > 0 ? Math.min(recentLimit, FEATURE_RULES.recentLimit) : FEATURE_RULES.recentLimit;
  const p = s.prices;
  const mean = p ? p.sum / p.n : 0;
  return {
    userId,
    known: true,
    recent: s.recent.slice(-limit).map(([itemId, type, occurredAt]) => ({ itemId, type, occurredAt })),
    counts: { ...s.counts },
    firstSeenAt: s.firstSeen,
    lastSeenAt: s.lastSeen,
    sessions: s.sessions,
    purchases: s.purchases,
    unitsPurchased: s.units,
    spend: s.spend,
    lastPurchaseAt: s.lastPurchaseAt ?? undefined,
    categoryAffinity: Object.entries(s.affinity)
      .map(([category, d]) => ({ category, score: decayedAt(d, watermark, FEATURE_RULES.affinityTauMs) }))
      .sort((a, b) => b.score - a.score || (a.category < b.category ? -1 : 1)),
    priceBand: p
      ? { count: p.n, min: p.min, max: p.max, mean, stddev: Math.sqrt(Math.max(0, p.sumSq / p.n - mean * mean)) }
      : undefined,
    recentQueries: s.queries.map(([q]) => q),
  };
}

export function itemView(
  itemId: string,
  s: ItemState | undefined,
  watermark: number,
  coVisitLimit: number,
): ItemFeaturesView {
  const tau = FEATURE_RULES.popularityTauMs;
  const views = s?.views ?? 0;
  const { ctrPrior, conversionPrior } = FEATURE_RULES;
  return {
    itemId,
    known: s !== undefined,
    popularity1d: decayedAt(s?.pop.d1, watermark, tau.d1),
    popularity7d: decayedAt(s?.pop.d7, watermark, tau.d7),
    popularity30d: decayedAt(s?.pop.d30, watermark, tau.d30),
    views,
    clicks: s?.clicks ?? 0,
    addToCarts: s?.carts ?? 0,
    purchases: s?.purchases ?? 0,
    ctr: ((s?.clicks ?? 0) + ctrPrior.hits) / (views + ctrPrior.trials),
    conversionRate: ((s?.purchases ?? 0) + conversionPrior.hits) / (views + conversionPrior.trials),
    coVisited:
      coVisitLimit > 0
        ? Object.entries(s?.coVisits ?? {})
            .map(([id, score]) => ({ itemId: id, score }))
            .sort((a, b) => b.score - a.score || (a.itemId < b.itemId ? -1 : 1))
            .slice(0, coVisitLimit)
        : [],
    lastEventAt: s?.lastEventAt,
  };
}
