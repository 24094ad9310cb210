import { IngestService, type IngestRepository } from './ingest.service';

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

/** Issue #18: a producer cannot grow a tenant's catalog (held in memory by ranking and embedding) without limit. */
test("new items beyond a tenant's catalog cap are refused; updates and other tenants still pass", async () => {
  const stored = new Map<string, Set<string>>([['shop', new Set(['old-1', 'old-2'])]]);
  const repo: IngestRepository = {
    insertEvents: async () => ({ inserted: 0, conflicting: [] }),
    upsertItems: async () => ({ written: 0 }),
    currentItems: async () => new Map(),
    catalogState: async (tenant, ids) => {
      const have = stored.get(tenant) ?? new Set<string>();
      return { count: have.size, existing: new Set(ids.filter((id) => have.has(id))) };
    },
  };
  const decoder = { decodeEvent: () => ({}), decodeItem: () => ({}) };
  const service = new IngestService(repo, decoder, { maxItemsPerTenant: 3 });
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

/** Issue #18: the tenant is bound to the producer's identity (the subject its NATS user may publish), not its claim. */
test("a tenant's subject binds the tenant; required, a tenant-less subject is refused", () => {
  const repo: IngestRepository = {
    insertEvents: async () => ({ inserted: 0, conflicting: [] }),
    upsertItems: async () => ({ written: 0 }),
    currentItems: async () => new Map(),
    catalogState: async () => ({ count: 0, existing: new Set<string>() }),
  };
  const decoder = { decodeEvent: () => ({}), decodeItem: () => ({}) };
  const event = (payload: Record<string, unknown>, subjectTenant?: string) => ({
    data: enc({ event_id: 'e1', user_id: 'u1', item_id: 'i1', occurred_at: new Date().toISOString(), ...payload }),
    contentType: undefined,
    subjectType: 'view',
    subjectTenant,
  });
  const outcome = (r: { ok: true; value: { tenant: string } } | { ok: false; reason: string }) =>
    r.ok ? r.value.tenant : r.reason;
  const declared = new Set(['shop-a', 'shop-b', 'default']);
  for (const requireSubjectTenant of [false, true]) {
    const service = new IngestService(repo, decoder, { isDeclared: (t) => declared.has(t), requireSubjectTenant });
    expect(
      service
        .validateEvents([
          event({}, 'shop-a'),
          event({ tenant: 'shop-a' }, 'shop-a'),
          event({ tenant: 'shop-b' }, 'shop-a'),
          event({}, 'bad tenant'),
          event({}, 'shop-c'),
          event({ tenant: 'shop-b' }),
        ])
        .map(outcome),
    ).toEqual([
      'shop-a',
      'shop-a',
      "tenant: 'shop-b' does not match the subject's tenant 'shop-a'",
      "subject: tenant 'bad tenant' must be letters, digits, _ . -",
      "tenant: 'shop-c' is not a declared tenant (AISLE_TENANTS or the aisle-tenants bucket)",
      requireSubjectTenant
        ? 'subject: names no tenant (publish to aisle.clickstream.v1.<type>.<tenant>; AISLE_INGEST_SUBJECT_TENANT=required)'
        : 'shop-b',
    ]);
    const item = (subjectType: string, subjectTenant?: string) => ({
      data: enc({ item_id: 'i1', title: 'Item', tenant: 'shop-b' }),
      contentType: undefined,
      subjectType,
      subjectTenant,
    });
    expect(
      service
        .validateItems([item('upsert', 'shop-b'), item('upsert', 'shop-a'), item('delete', 'shop-b')])
        .map(outcome),
    ).toEqual([
      'shop-b',
      "tenant: 'shop-b' does not match the subject's tenant 'shop-a'",
      "subject: 'delete' is not a catalog operation (upsert)",
    ]);
  }
});

/** Issue #13: the accepted catalog keeps one message per item, so what goes there is the stored (newest) version. */
test('an update older than the stored item hands on the stored version, not the stale one', async () => {
  const stale = {
    tenant: 'shop',
    itemId: 'sku',
    title: 'Old title',
    description: '',
    category: '',
    brand: '',
    price: 1,
    inStock: true,
    attributes: {},
    updatedAt: 1000,
    ingestedAt: 3000,
  };
  const repo: IngestRepository = {
    insertEvents: async () => ({ inserted: 0, conflicting: [] }),
    upsertItems: async () => ({ written: 0 }),
    currentItems: async (tenant, ids) =>
      new Map(
        tenant === 'shop' && ids.includes('sku') ? [['sku', { ...stale, title: 'New title', updatedAt: 2000 }]] : [],
      ),
    catalogState: async () => ({ count: 1, existing: new Set(['sku']) }),
  };
  const service = new IngestService(repo, { decodeEvent: () => ({}), decodeItem: () => ({}) }, {});
  const { results } = await service.storeItems([
    { ok: true, value: stale },
    { ok: false, reason: 'bad' },
  ]);
  expect(results).toEqual([
    { ok: true, value: { ...stale, title: 'New title', updatedAt: 2000 } },
    { ok: false, reason: 'bad' },
  ]);
});
