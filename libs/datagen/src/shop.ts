import type { Event, EventType, Item } from '@aisle/contracts';
import { Rng } from './random';
import { BRAND_SYLLABLES, DEPARTMENTS, MATERIALS } from './vocabulary';

/**
 * A seeded synthetic shop with planted, measurable signals:
 * - taste: each user prefers 1-3 subcategories;
 * - sequence: inside a subcategory, items form a hidden chain and sessions tend to move from an item to
 *   its successor (next-item prediction beats popularity);
 * - search: queries are made of a target item's title words, and the user then views that item;
 * - churn: "drifting" users' session rate decays until they stop, steady users keep their rate.
 */

export type GeneratedEventType = EventType;

export type GeneratedItem = Pick<
  Item,
  'itemId' | 'title' | 'description' | 'category' | 'brand' | 'price' | 'inStock' | 'updatedAt'
>;

export type GeneratedEvent = Pick<
  Event,
  'eventId' | 'type' | 'userId' | 'sessionId' | 'itemId' | 'query' | 'quantity' | 'price' | 'occurredAt'
>;

export interface GeneratedUser {
  userId: string;
  /** Preferred subcategories ("Department > Subcategory"), strongest first. */
  tastes: string[];
  /** True for users who drift away and stop. */
  churner: boolean;
  /** When a churner's last possible session is (ms). */
  churnAt: number | undefined;
  /** Sessions per week at the start. */
  sessionsPerWeek: number;
}

export interface Shop {
  seed: number;
  start: number;
  end: number;
  items: GeneratedItem[];
  users: GeneratedUser[];
  /** Sorted by (occurredAt, eventId). */
  events: GeneratedEvent[];
  /** successor[itemId] = the next item in its hidden chain. */
  successor: Map<string, string>;
}

export interface ShopOptions {
  seed?: number;
  items?: number;
  users?: number;
  days?: number;
  /** Epoch ms of the first day (UTC midnight recommended). */
  start?: number;
  /** Share of users who drift away. */
  churnRate?: number;
  /** Mean sessions per user per week. */
  sessionsPerWeek?: number;
}

const DAY = 86_400_000;
const WEEK = 7 * DAY;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function titleCase(s: string): string {
  return s.replace(/\b[a-z]/g, (c) => c.toUpperCase());
}

export function generateShop(opts: ShopOptions = {}): Shop {
  const seed = opts.seed ?? 42;
  const rng = new Rng(seed);
  const nItems = opts.items ?? 300;
  const nUsers = opts.users ?? 400;
  const days = opts.days ?? 60;
  const start = opts.start ?? Date.UTC(2026, 8, 1);
  const end = start + days * DAY;
  const churnRate = opts.churnRate ?? 0.3;
  const meanSessions = opts.sessionsPerWeek ?? 2.5;

  const subcats = DEPARTMENTS.flatMap((d) =>
    d.subcategories.map((s) => ({ dept: d, sub: s, path: `${d.name} > ${s.name}` })),
  );
  const brands = Array.from({ length: 24 }, () =>
    titleCase(rng.pick(BRAND_SYLLABLES) + rng.pick(BRAND_SYLLABLES) + rng.pick(BRAND_SYLLABLES)),
  );
  const itemWidth = String(nItems).length + 1;

  // Catalog: items spread over subcategories; a Zipf popularity inside each, and a hidden chain order.
  const items: GeneratedItem[] = [];
  const bySubcat = new Map<string, { ids: string[]; weights: number[] }>();
  const titleWords = new Map<string, { noun: string; adjective: string; material: string }>();
  for (let i = 0; i < nItems; i++) {
    const sc = subcats[i % subcats.length] ?? subcats[0];
    if (!sc) throw new Error('no subcategories');
    const noun = rng.pick(sc.sub.nouns);
    const adjective = rng.pick(sc.dept.adjectives);
    const material = rng.pick(MATERIALS);
    const brand = rng.pick(brands);
    const itemId = `i${pad(i + 1, itemWidth)}`;
    const price = Math.round(sc.sub.basePrice * Math.exp(0.45 * rng.normal()) * 100) / 100;
    items.push({
      itemId,
      title: `${brand} ${titleCase(adjective)} ${titleCase(material)} ${titleCase(noun)}`,
      description: `A ${adjective} ${noun} in ${material} by ${brand}. ${sc.sub.name} for everyday use.`,
      category: sc.path,
      brand,
      price,
      inStock: rng.chance(0.95),
      updatedAt: start - DAY,
    });
    titleWords.set(itemId, { noun, adjective, material });
    const entry = bySubcat.get(sc.path) ?? { ids: [], weights: [] };
    entry.ids.push(itemId);
    bySubcat.set(sc.path, entry);
  }
  const successor = new Map<string, string>();
  for (const entry of bySubcat.values()) {
    rng.shuffle(entry.ids);
    entry.weights = entry.ids.map((_, rank) => 1 / (rank + 1) ** 0.9);
    // The chain runs through a second, independent order, so that successors are not just the popular items.
    const chain = rng.shuffle([...entry.ids]);
    chain.forEach((id, k) => successor.set(id, chain[(k + 1) % chain.length] as string));
  }
  const itemById = new Map(items.map((it) => [it.itemId, it]));
  const subcatPaths = [...bySubcat.keys()];

  const users: GeneratedUser[] = [];
  const events: GeneratedEvent[] = [];
  const userWidth = String(nUsers).length + 1;
  const pickFrom = (path: string): string => {
    const e = bySubcat.get(path);
    if (!e) throw new Error(`no items in ${path}`);
    return e.ids[rng.weighted(e.weights)] as string;
  };

  for (let u = 0; u < nUsers; u++) {
    const userId = `u${pad(u + 1, userWidth)}`;
    const nTastes = 1 + rng.weighted([0.5, 0.35, 0.15]);
    const tastes: string[] = [];
    while (tastes.length < Math.min(nTastes, subcatPaths.length)) {
      const p = rng.pick(subcatPaths);
      if (!tastes.includes(p)) tastes.push(p);
    }
    const tasteWeights = tastes.map((_, k) => 1 / (k + 1));
    const churner = rng.chance(churnRate);
    const sessionsPerWeek = meanSessions * Math.exp(0.4 * rng.normal());
    // Drifters start fading somewhere in the middle and stop for good at churnAt.
    const fadeFrom = start + days * DAY * rng.range(0.25, 0.45);
    const churnAt = churner ? fadeFrom + days * DAY * rng.range(0.15, 0.3) : undefined;
    users.push({ userId, tastes, churner, churnAt, sessionsPerWeek });

    let seq = 0;
    let sessionNo = 0;
    const emit = (
      type: GeneratedEventType,
      sessionId: string,
      at: number,
      itemId: string,
      extra: Partial<GeneratedEvent> = {},
    ): void => {
      events.push({
        eventId: `e-${userId}-${pad(seq++, 5)}`,
        type,
        userId,
        sessionId,
        itemId,
        query: '',
        quantity: 0,
        price: 0,
        occurredAt: Math.round(at),
        ...extra,
      });
    };

    let t = start + rng.exponential(sessionsPerWeek / WEEK);
    while (t < end && (churnAt === undefined || t < churnAt)) {
      const sessionId = `s-${userId}-${sessionNo++}`;
      let at = t;
      const taste = tastes[rng.weighted(tasteWeights)] as string;
      let current: string;
      if (rng.chance(0.3)) {
        const target = pickFrom(taste);
        const w = titleWords.get(target);
        if (!w) throw new Error('missing title words');
        const parts = [w.noun];
        if (rng.chance(0.6)) parts.unshift(w.adjective);
        if (rng.chance(0.3)) parts.unshift(w.material);
        emit('search', sessionId, at, '', { query: parts.join(' ') });
        at += rng.range(3, 20) * 1000;
        current = target;
      } else {
        current = pickFrom(taste);
      }
      const length = 2 + Math.min(10, Math.floor(rng.exponential(1 / 2.5)));
      const cart: string[] = [];
      for (let step = 0; step < length; step++) {
        const item = itemById.get(current);
        if (!item) throw new Error('unknown item');
        if (rng.chance(0.4)) {
          emit('click', sessionId, at, current);
          at += rng.range(1, 4) * 1000;
        }
        emit('view', sessionId, at, current);
        at += rng.range(15, 120) * 1000;
        if (rng.chance(0.12)) {
          emit('add_to_cart', sessionId, at, current, { quantity: 1, price: item.price });
          cart.push(current);
          at += rng.range(5, 30) * 1000;
        }
        const r = rng.next();
        if (r < 0.55) current = successor.get(current) ?? current;
        else if (r < 0.8) current = pickFrom(item.category);
        else current = pickFrom(tastes[rng.weighted(tasteWeights)] as string);
      }
      for (const itemId of cart) {
        const item = itemById.get(itemId);
        if (!item) continue;
        if (rng.chance(0.6)) {
          emit('purchase', sessionId, at, itemId, { quantity: rng.chance(0.8) ? 1 : 2, price: item.price });
        } else if (rng.chance(0.3)) {
          emit('remove_from_cart', sessionId, at, itemId, { quantity: 1, price: item.price });
        }
        at += rng.range(2, 10) * 1000;
      }
      // Drifters' session rate falls off exponentially after fadeFrom.
      let rate = sessionsPerWeek / WEEK;
      if (churner && t > fadeFrom) rate *= Math.exp(-(t - fadeFrom) / (7 * DAY));
      t = Math.max(at, t) + rng.exponential(rate);
    }
  }

  events.sort((a, b) => a.occurredAt - b.occurredAt || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
  return { seed, start, end, items, users, events, successor };
}
