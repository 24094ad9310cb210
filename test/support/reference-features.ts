/**
 * An independent, deliberately naive computation of the feature definitions (services/feature README),
 * used to check the service's incremental results: it recomputes everything from the full event list.
 */
import type { GeneratedEvent, GeneratedItem } from '@aisle/datagen';

const DAY = 86_400_000;
const AFFINITY_TAU = (14 * DAY) / Math.LN2;
const WEIGHTS: Record<string, number> = {
  view: 1,
  click: 1,
  add_to_cart: 3,
  remove_from_cart: 0,
  purchase: 5,
  search: 0,
};
const COVISIT_TYPES = new Set(['view', 'add_to_cart', 'purchase']);

export interface RefUser {
  counts: Record<string, number>;
  firstSeen: number;
  lastSeen: number;
  sessions: number;
  purchases: number;
  units: number;
  spend: number;
  lastPurchaseAt: number | undefined;
  affinity: Map<string, number>;
  price: { n: number; min: number; max: number; mean: number; std: number } | undefined;
  recent: Array<{ itemId: string; type: string; at: number }>;
  queries: string[];
}

export interface RefItem {
  views: number;
  clicks: number;
  carts: number;
  purchases: number;
  pop1: number;
  pop7: number;
  pop30: number;
  coVisits: Map<string, number>;
}

const byTimeThenId = (a: GeneratedEvent, b: GeneratedEvent) =>
  a.occurredAt - b.occurredAt || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);

export function referenceFeatures(events: readonly GeneratedEvent[], catalog: readonly GeneratedItem[]) {
  const items = new Map(catalog.map((i) => [i.itemId, i]));
  const watermark = Math.max(...events.map((e) => e.occurredAt));
  const users = new Map<string, RefUser>();
  const itemRefs = new Map<string, RefItem>();
  const byUser = new Map<string, GeneratedEvent[]>();
  for (const e of events) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);

  const itemRef = (id: string): RefItem => {
    let r = itemRefs.get(id);
    if (!r) {
      r = { views: 0, clicks: 0, carts: 0, purchases: 0, pop1: 0, pop7: 0, pop30: 0, coVisits: new Map() };
      itemRefs.set(id, r);
    }
    return r;
  };

  for (const [userId, list] of byUser) {
    list.sort(byTimeThenId);
    const counts: Record<string, number> = {
      view: 0,
      click: 0,
      add_to_cart: 0,
      remove_from_cart: 0,
      purchase: 0,
      search: 0,
    };
    const affinity = new Map<string, number>();
    const prices: number[] = [];
    let purchases = 0;
    let units = 0;
    let spend = 0;
    let lastPurchaseAt: number | undefined;
    for (const e of list) {
      counts[e.type] = (counts[e.type] ?? 0) + 1;
      if (e.type === 'search' || !e.itemId) continue;
      const item = items.get(e.itemId);
      if (e.type === 'purchase') {
        purchases++;
        units += e.quantity;
        spend += e.price * e.quantity;
        lastPurchaseAt = Math.max(lastPurchaseAt ?? e.occurredAt, e.occurredAt);
      }
      const w = WEIGHTS[e.type] ?? 0;
      if (item && w > 0) {
        const parts = item.category.split(' > ');
        for (let k = 1; k <= parts.length; k++) {
          const c = parts.slice(0, k).join(' > ');
          affinity.set(c, (affinity.get(c) ?? 0) + w * Math.exp(-(watermark - e.occurredAt) / AFFINITY_TAU));
        }
      }
      const price = item && item.price > 0 ? item.price : e.price;
      if (price > 0 && e.type !== 'remove_from_cart') prices.push(price);
      const r = itemRef(e.itemId);
      if (e.type === 'view') r.views++;
      if (e.type === 'click') r.clicks++;
      if (e.type === 'add_to_cart') r.carts++;
      if (e.type === 'purchase') r.purchases++;
      if (e.type !== 'remove_from_cart') {
        r.pop1 += Math.exp(-(watermark - e.occurredAt) / DAY);
        r.pop7 += Math.exp(-(watermark - e.occurredAt) / (7 * DAY));
        r.pop30 += Math.exp(-(watermark - e.occurredAt) / (30 * DAY));
      }
    }
    // Co-visits: every pair of this user's qualifying events on two different items within an hour.
    const cv = list.filter((e) => COVISIT_TYPES.has(e.type) && e.itemId);
    for (let i = 0; i < cv.length; i++) {
      for (let j = i + 1; j < cv.length; j++) {
        const a = cv[i]!;
        const b = cv[j]!;
        if (a.itemId === b.itemId || Math.abs(a.occurredAt - b.occurredAt) > 3_600_000) continue;
        const ra = itemRef(a.itemId);
        const rb = itemRef(b.itemId);
        ra.coVisits.set(b.itemId, (ra.coVisits.get(b.itemId) ?? 0) + 1);
        rb.coVisits.set(a.itemId, (rb.coVisits.get(a.itemId) ?? 0) + 1);
      }
    }
    const mean = prices.reduce((s, p) => s + p, 0) / (prices.length || 1);
    const itemEvents = list.filter((e) => e.type !== 'search' && e.itemId);
    users.set(userId, {
      counts,
      firstSeen: list[0]!.occurredAt,
      lastSeen: list[list.length - 1]!.occurredAt,
      sessions: new Set(list.map((e) => e.sessionId).filter(Boolean)).size,
      purchases,
      units,
      spend,
      lastPurchaseAt,
      affinity,
      price: prices.length
        ? {
            n: prices.length,
            min: Math.min(...prices),
            max: Math.max(...prices),
            mean,
            std: Math.sqrt(prices.reduce((s, p) => s + (p - mean) ** 2, 0) / prices.length),
          }
        : undefined,
      recent: itemEvents.slice(-200).map((e) => ({ itemId: e.itemId, type: e.type, at: e.occurredAt })),
      queries: list
        .filter((e) => e.type === 'search')
        .slice(-20)
        .map((e) => e.query),
    });
  }
  return { users, items: itemRefs, watermark };
}
