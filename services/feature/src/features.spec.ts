import { addDecayed, DAY_MS, decayedAt } from './decay';
import { applyEvent, categoryLevels, itemView, newUser, userView, type FeatureEvent, type ItemState } from './features';

const T0 = Date.UTC(2026, 10, 1);
let n = 0;
const ev = (over: Partial<FeatureEvent>): FeatureEvent => ({
  tenant: 't',
  eventId: `e${n++}`,
  type: 'view',
  userId: 'u',
  sessionId: 's1',
  itemId: 'a',
  query: '',
  quantity: 0,
  price: 0,
  occurredAt: T0,
  ...over,
});

describe('decayed sums', () => {
  test('are independent of arrival order', () => {
    const times = [T0, T0 + 3 * DAY_MS, T0 + DAY_MS, T0 + 10 * DAY_MS, T0 + 2 * DAY_MS];
    const fold = (ts: number[]) =>
      ts.reduce<ReturnType<typeof addDecayed> | undefined>((d, t) => addDecayed(d, t, 1, 7 * DAY_MS), undefined);
    const a = fold(times);
    const b = fold([...times].reverse());
    const now = T0 + 20 * DAY_MS;
    const direct = times.reduce((s, t) => s + Math.exp(-(now - t) / (7 * DAY_MS)), 0);
    expect(decayedAt(a, now, 7 * DAY_MS)).toBeCloseTo(direct, 12);
    expect(decayedAt(b, now, 7 * DAY_MS)).toBeCloseTo(direct, 12);
  });
  test('are not grown backwards in time', () => {
    expect(decayedAt({ v: 2, t: T0 }, T0 - DAY_MS, DAY_MS)).toBe(2);
  });
});

test('categoryLevels credits every prefix', () => {
  expect(categoryLevels('A > B > C')).toEqual(['A', 'A > B', 'A > B > C']);
});

describe('applyEvent', () => {
  const catalog = new Map([
    ['a', { category: 'Home > Candles', price: 10 }],
    ['b', { category: 'Home > Bedding', price: 30 }],
  ]);

  test('counts, sessions, spend, affinity, price band', () => {
    const user = newUser('u', T0);
    const items = new Map<string, ItemState>();
    applyEvent(ev({ type: 'view', itemId: 'a' }), user, items, catalog);
    applyEvent(
      ev({ type: 'purchase', itemId: 'b', quantity: 2, price: 25, sessionId: 's2', occurredAt: T0 + 1000 }),
      user,
      items,
      catalog,
    );
    applyEvent(ev({ type: 'search', itemId: '', query: 'candle', occurredAt: T0 + 2000 }), user, items, catalog);
    const v = userView('u', user, T0 + 2000, 0);
    expect(v.counts).toMatchObject({ view: 1, purchase: 1, search: 1 });
    expect(v.sessions).toBe(2);
    expect(v.spend).toBe(50);
    expect(v.unitsPurchased).toBe(2);
    expect(v.priceBand).toMatchObject({ count: 2, min: 10, max: 30, mean: 20 });
    expect(v.categoryAffinity[0]?.category).toBe('Home');
    expect(v.categoryAffinity.map((a) => a.category)).toEqual(['Home', 'Home > Bedding', 'Home > Candles']);
    expect(v.recentQueries).toEqual(['candle']);
    expect(v.recent.map((r) => r.itemId)).toEqual(['a', 'b']);
  });

  test('co-visits count pairs of events on different items within an hour, in both directions', () => {
    const user = newUser('u', T0);
    const items = new Map<string, ItemState>();
    applyEvent(ev({ itemId: 'a' }), user, items, catalog);
    applyEvent(ev({ itemId: 'b', occurredAt: T0 + 30 * 60_000 }), user, items, catalog);
    applyEvent(ev({ itemId: 'a', type: 'click', occurredAt: T0 + 31 * 60_000 }), user, items, catalog); // clicks do not co-visit
    applyEvent(ev({ itemId: 'c', occurredAt: T0 + 2 * 3_600_000 }), user, items, catalog); // too late for a and b
    expect(itemView('a', items.get('a'), T0, 10).coVisited).toEqual([{ itemId: 'b', score: 1 }]);
    expect(itemView('b', items.get('b'), T0, 10).coVisited).toEqual([{ itemId: 'a', score: 1 }]);
    expect(itemView('c', items.get('c'), T0, 10).coVisited).toEqual([]);
  });

  test('category names and item ids like constructor or __proto__ are ordinary keys, also after a store round trip', () => {
    const odd = new Map([
      ['constructor', { category: 'constructor > __proto__', price: 5 }],
      ['__proto__', { category: 'toString > hasOwnProperty', price: 7 }],
    ]);
    const roundTrip = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
    let user = newUser('u', T0);
    let items = new Map<string, ItemState>();
    applyEvent(ev({ itemId: 'constructor' }), user, items, odd);
    // What the store hands back: ordinary objects from JSON.parse.
    user = roundTrip(user);
    items = new Map([...items].map(([k, v]) => [k, roundTrip(v)]));
    applyEvent(ev({ itemId: '__proto__', type: 'purchase', quantity: 1, occurredAt: T0 + 60_000 }), user, items, odd);
    applyEvent(ev({ itemId: 'constructor', occurredAt: T0 + 120_000 }), user, items, odd);
    const v = userView('u', roundTrip(user), T0 + 120_000, 0);
    expect(v.categoryAffinity.map((a) => a.category).sort()).toEqual([
      'constructor',
      'constructor > __proto__',
      'toString',
      'toString > hasOwnProperty',
    ]);
    for (const a of v.categoryAffinity) expect(Number.isFinite(a.score) && a.score > 0).toBe(true);
    expect(itemView('constructor', roundTrip(items.get('constructor')), T0, 10).coVisited).toEqual([
      { itemId: '__proto__', score: 2 },
    ]);
    expect(itemView('__proto__', roundTrip(items.get('__proto__')), T0, 10).coVisited).toEqual([
      { itemId: 'constructor', score: 2 },
    ]);
  });

  test('smoothed CTR and conversion use their priors', () => {
    const v = itemView('x', undefined, T0, 0);
    expect(v.coVisited).toEqual([]);
    expect(v.known).toBe(false);
    expect(v.ctr).toBeCloseTo(1 / 20);
    expect(v.conversionRate).toBeCloseTo(0.5 / 50);
  });

  test('recent interactions keep the last 200 in event-time order', () => {
    const user = newUser('u', T0);
    const items = new Map<string, ItemState>();
    for (let i = 0; i < 250; i++)
      applyEvent(ev({ itemId: `i${i}`, type: 'click', occurredAt: T0 + (250 - i) * 1000 }), user, items, catalog);
    expect(user.recent).toHaveLength(200);
    expect(user.recent[0]?.[0]).toBe('i199');
    expect(user.recent[199]?.[0]).toBe('i0');
  });
});
