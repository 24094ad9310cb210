/** Shared fakes for the ranking core's unit tests (not part of the built library). */
import { Catalog, type CatalogUpsert } from './catalog';
import { DEFAULT_DEADLINE_POLICY, RequestContext, type DeadlinePolicy, type RequestInit } from './context';
import { ItemStatsTable, MemoryCoVisitation, MemoryUserContext } from './memory';
import type { CallBudget, Neighbor, UserProfile } from './ports';
import { NO_FILTERS } from './requests';

export const ITEMS: CatalogUpsert[] = [
  { itemId: 'soap', title: 'Lavender Soap', category: 'Beauty > Bath', brand: 'Lumina', price: 5, inStock: true },
  { itemId: 'bomb', title: 'Bath Bomb', category: 'Beauty > Bath', brand: 'Lumina', price: 7, inStock: true },
  { itemId: 'salt', title: 'Bath Salt', category: 'Beauty > Bath', brand: 'Oro', price: 9, inStock: true },
  { itemId: 'sponge', title: 'Bath Sponge', category: 'Beauty > Bath', brand: 'Oro', price: 3, inStock: true },
  {
    itemId: 'toner',
    title: 'Matte Oak Toner',
    category: 'Beauty > Skin Care',
    brand: 'Lumina',
    price: 20,
    inStock: true,
  },
  { itemId: 'serum', title: 'Night Serum', category: 'Beauty > Skin Care', brand: 'Oro', price: 35, inStock: false },
  { itemId: 'glue', title: 'Gorilla Glue', category: 'Home > Tools', brand: 'Gorilla', price: 8, inStock: true },
  { itemId: 'hammer', title: 'Claw Hammer', category: 'Home > Tools', brand: 'Stanley', price: 25, inStock: true },
  { itemId: 'candle', title: 'Soy Candle', category: 'Home > Decor', brand: 'Lumina', price: 12, inStock: true },
  { itemId: 'vase', title: 'Glass Vase', category: 'Home > Decor', brand: 'Oro', price: 30, inStock: true },
];

export function catalog(items: CatalogUpsert[] = ITEMS): Catalog {
  const c = new Catalog();
  c.upsert(items);
  return c;
}

export function profile(userId: string, recent: string[], extra: Partial<UserProfile> = {}): UserProfile {
  return {
    userId,
    recent: recent.map((itemId, i) => ({ itemId, type: 'view', at: 1000 + i })),
    purchased: new Set(),
    affinity: [],
    price: undefined,
    queries: [],
    ...extra,
  };
}

export const COVISITS = new Map<string, Neighbor[]>([
  [
    'soap',
    [
      { itemId: 'bomb', score: 5 },
      { itemId: 'salt', score: 2 },
    ],
  ],
  [
    'toner',
    [
      { itemId: 'serum', score: 4 },
      { itemId: 'bomb', score: 1 },
    ],
  ],
  ['glue', [{ itemId: 'hammer', score: 6 }]],
]);

export interface World {
  catalog: Catalog;
  coVisitation: MemoryCoVisitation;
  userContext: MemoryUserContext;
  stats: ItemStatsTable;
}

export function world(): World {
  const c = catalog();
  const coVisitation = new MemoryCoVisitation(new Map(COVISITS));
  const userContext = new MemoryUserContext(
    new Map([
      [
        'ann',
        profile('ann', ['toner', 'soap'], {
          affinity: [
            { category: 'Beauty > Bath', score: 4 },
            { category: 'Beauty > Skin Care', score: 2 },
          ],
          purchased: new Set(['soap']),
          price: { mean: 8, std: 3 },
        }),
      ],
    ]),
    coVisitation,
  );
  const stats = new ItemStatsTable(c);
  stats.replace(
    ITEMS.map((i, k) => [i.itemId, { popularity7d: 100 - k * 10, ctr: 0.05 + k / 100, conversionRate: 0.01 }]),
  );
  return { catalog: c, coVisitation, userContext, stats };
}

export function context(
  init: Partial<RequestInit> = {},
  policy: Partial<DeadlinePolicy> = {},
  clock: () => number = Date.now,
): RequestContext {
  return new RequestContext(
    {
      tenant: 'default',
      surface: 'recommend',
      requestId: 'r1',
      userId: '',
      query: '',
      limit: 10,
      filters: NO_FILTERS,
      context: {},
      explain: false,
      ...init,
    },
    { ...DEFAULT_DEADLINE_POLICY, ...policy },
    clock,
  );
}

/** A dependency that never answers (a SIGSTOPped process); it notes the budget it was given. */
export function hung<T>(budgets: CallBudget[] = []): (...args: unknown[]) => Promise<T> {
  return (...args: unknown[]) => {
    budgets.push(args[args.length - 1] as CallBudget);
    return new Promise<T>(() => undefined);
  };
}
