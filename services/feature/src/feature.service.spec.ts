import { FeatureService, type CatalogReader, type FeatureRepository } from './feature.service';
import type { ItemState } from './features';

/** Issue #18: the popular-items cache is keyed on the request's tenant, so it must be bounded. */
test('the popular-items cache keeps the most recently asked tenants only', async () => {
  const scans: string[] = [];
  const item: ItemState = {
    itemId: 'i1',
    pop: { d7: { v: 3, t: 1000 } },
    views: 3,
    clicks: 0,
    carts: 0,
    purchases: 0,
    firstEventAt: 1000,
    lastEventAt: 1000,
    coVisits: {},
  };
  const repo = {
    getMeta: async () => ({ watermark: 1000 }),
    scanItems: (tenant: string) => {
      scans.push(tenant);
      return (async function* () {
        yield { id: 'i1', doc: item };
      })();
    },
  } as unknown as FeatureRepository;
  const catalog = {
    scan: () =>
      (async function* () {
        yield { itemId: 'i1', category: 'Shoes' };
      })(),
  } as unknown as CatalogReader;
  const service = new FeatureService(repo, catalog, { popularCacheMs: 60_000, clock: () => 0, popularCacheTenants: 2 });
  for (const t of ['a', 'b', 'a', 'c', 'a', 'b']) await service.listPopular(t, '', 5);
  // a, b cached; a hit; c evicts b (a was used last); a hit; b evicted earlier, so scanned again.
  expect(scans).toEqual(['a', 'b', 'c', 'b']);
  for (let i = 0; i < 300; i++) await service.listPopular(`tenant-${i}`, '', 5);
  await service.listPopular('a', '', 5);
  expect(scans.at(-1)).toBe('a');
  expect((await service.listPopular('a', 'Shoes', 5)).items.map((i) => i.itemId)).toEqual(['i1']);
  await expect(service.listPopular('a', 'x'.repeat(513), 5)).rejects.toThrow('category: longer than 512 characters');
});
