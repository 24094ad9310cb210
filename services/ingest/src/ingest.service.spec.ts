import { IngestService, type IngestRepository } from './ingest.service';

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

/** Issue #18: a producer cannot grow a tenant's catalog (held in memory by ranking and embedding) without limit. */
test("new items beyond a tenant's catalog cap are refused; updates and other tenants still pass", async () => {
  const stored = new Map<string, Set<string>>([['shop', new Set(['old-1', 'old-2'])]]);
  const repo: IngestRepository = {
    insertEvents: async () => ({ inserted: 0, conflicting: [] }),
    upsertItems: async () => ({ written: 0 }),
    catalogState: async (tenant, ids) => {
      const have = stored.get(tenant) ?? new Set<string>();
      return { count: have.size, existing: new Set(ids.filter((id) => have.has(id))) };
    },
  };
  const decoder = { decodeEvent: () => ({}), decodeItem: () => ({}) };
  const service = new IngestService(repo, decoder, Date.now, 3);
  const item = (tenant: string, id: string) => ({
    data: enc({ tenant, item_id: id, title: `Item ${id}` }),
    contentType: undefined,
  });
  const results = await service.admitItems(
    service.validateItems([
      item('shop', 'new-1'),
      item('shop', 'old-1'),
      item('shop', 'new-2'),
      item('shop', 'new-1'),
      item('other', 'x'),
    ]),
  );
  expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual([
    'ok',
    'ok',
    "item_id: new item refused: the tenant's catalog holds its maximum of 3 items",
    'ok',
    'ok',
  ]);
});
