import type { CatalogItem, ChurnScoreRecord, Store, StoredEvent } from '../src';

/** One behavioural suite every adapter must pass. */
export function describeStoreContract(name: string, open: () => Promise<Store>): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    const ev = (id: string, at: number, over: Partial<StoredEvent> = {}): StoredEvent => ({
      tenant: 't1',
      eventId: id,
      type: 'view',
      userId: 'u1',
      sessionId: 's1',
      itemId: 'i1',
      query: '',
      quantity: 0,
      price: 0,
      currency: '',
      occurredAt: at,
      ingestedAt: at + 5,
      requestId: '',
      position: 0,
      context: { surface: 'home' },
      ...over,
    });

    const item = (id: string, updatedAt: number, over: Partial<CatalogItem> = {}): CatalogItem => ({
      tenant: 't1',
      itemId: id,
      title: `Item ${id}`,
      description: '',
      category: 'A > B',
      brand: 'acme',
      price: 9.5,
      inStock: true,
      attributes: {},
      updatedAt,
      ingestedAt: updatedAt,
      ...over,
    });

    test('events are stored once per (tenant, event id), whatever the batch', async () => {
      expect(await store.events.insertMany([ev('a', 3), ev('b', 1), ev('a', 3)])).toEqual({ inserted: 2 });
      expect(await store.events.insertMany([ev('b', 1), ev('c', 2)])).toEqual({ inserted: 1 });
      expect(await store.events.insertMany([ev('a', 3, { tenant: 't2' })])).toEqual({ inserted: 1 });
      expect(await store.events.count()).toBe(4);
      expect(await store.events.count({ tenant: 't1' })).toBe(3);
    });

    test('scan returns events in event-time order, filtered by tenant and range, across pages', async () => {
      const events = Array.from({ length: 25 }, (_, i) => ev(`e${String(i).padStart(2, '0')}`, 1000 - (i % 7) * 10));
      await store.events.insertMany([...events, ev('other', 5, { tenant: 't2' })]);
      const all: StoredEvent[] = [];
      for await (const e of store.events.scan({ tenant: 't1', pageSize: 4 })) all.push(e);
      expect(all).toHaveLength(25);
      const sorted = [...all].sort((a, b) => a.occurredAt - b.occurredAt || a.eventId.localeCompare(b.eventId));
      expect(all.map((e) => e.eventId)).toEqual(sorted.map((e) => e.eventId));
      expect(all[0]).toEqual(ev(all[0]?.eventId ?? '', all[0]?.occurredAt ?? 0));
      const ranged: StoredEvent[] = [];
      for await (const e of store.events.scan({ tenant: 't1', fromMs: 960, toMs: 990 })) ranged.push(e);
      expect(ranged.every((e) => e.occurredAt >= 960 && e.occurredAt < 990)).toBe(true);
      expect(ranged.length).toBe(events.filter((e) => e.occurredAt >= 960 && e.occurredAt < 990).length);
      expect(await store.events.stats('t1')).toEqual({ count: 25, minOccurredAt: 940, maxOccurredAt: 1000 });
    });

    test('items: an older update never replaces a newer one', async () => {
      expect(await store.items.upsertMany([item('x', 10, { price: 1 })])).toEqual({ written: 1 });
      expect(await store.items.upsertMany([item('x', 5, { price: 2 })])).toEqual({ written: 0 });
      expect(
        await store.items.upsertMany([item('x', 20, { price: 3, inStock: false, attributes: { color: 'red' } })]),
      ).toEqual({ written: 1 });
      const got = await store.items.getMany('t1', ['x', 'missing']);
      expect(got.size).toBe(1);
      expect(got.get('x')).toEqual(item('x', 20, { price: 3, inStock: false, attributes: { color: 'red' } }));
      const scanned: string[] = [];
      await store.items.upsertMany([item('a', 1), item('b', 1, { tenant: 't2' })]);
      for await (const i of store.items.scan('t1')) scanned.push(i.itemId);
      expect(scanned).toEqual(['a', 'x']);
    });

    test('document transactions are atomic and applied markers are idempotent', async () => {
      const applied = await store.documents.transact(async (tx) => {
        const first = await tx.markApplied('c1', 't1', 'e1');
        const again = await tx.markApplied('c1', 't1', 'e1');
        await tx.putMany('user_features', 't1', new Map([['u1', { n: 1 }]]));
        return [first, again];
      });
      expect(applied).toEqual([true, false]);
      await expect(
        store.documents.transact(async (tx) => {
          await tx.markApplied('c1', 't1', 'e2');
          await tx.putMany('user_features', 't1', new Map([['u1', { n: 2 }]]));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await store.documents.getMany('user_features', 't1', ['u1'])).get('u1')).toEqual({ n: 1 });
      // The rolled-back marker must not have stuck.
      expect(await store.documents.transact((tx) => tx.markApplied('c1', 't1', 'e2'))).toBe(true);
      expect(await store.documents.transact((tx) => tx.markApplied('c2', 't1', 'e1'))).toBe(true);
    });

    test('documents scan and count per collection and tenant', async () => {
      await store.documents.transact(async (tx) => {
        await tx.putMany(
          'item_features',
          't1',
          new Map([
            ['b', { v: 2 }],
            ['a', { v: 1 }],
          ]),
        );
        await tx.putMany('item_features', 't2', new Map([['c', { v: 3 }]]));
        await tx.putMany('user_features', 't1', new Map([['u', { v: 4 }]]));
      });
      const seen: Array<{ id: string; doc: unknown }> = [];
      for await (const d of store.documents.scan('item_features', 't1')) seen.push(d);
      expect(seen).toEqual([
        { id: 'a', doc: { v: 1 } },
        { id: 'b', doc: { v: 2 } },
      ]);
      expect(await store.documents.count('item_features')).toBe(3);
      expect(await store.documents.listIds('item_features', 't1', '', 1)).toEqual(['a']);
      expect(await store.documents.listIds('item_features', 't1', 'a', 10)).toEqual(['b']);
      expect(await store.documents.count('item_features', 't2')).toBe(1);
    });

    test('concurrent transactions do not interleave', async () => {
      const bump = () =>
        store.documents.transact(async (tx) => {
          const cur = (await tx.getMany<{ n: number }>('feature_meta', 't1', ['counter'])).get('counter')?.n ?? 0;
          await new Promise((r) => setTimeout(r, 1));
          await tx.putMany('feature_meta', 't1', new Map([['counter', { n: cur + 1 }]]));
        });
      await Promise.all(Array.from({ length: 20 }, bump));
      expect((await store.documents.getMany<{ n: number }>('feature_meta', 't1', ['counter'])).get('counter')?.n).toBe(
        20,
      );
    });

    test('churn scores: upsert, read back, and page by risk', async () => {
      const rec = (userId: string, risk: number, tenant = 't1'): ChurnScoreRecord => ({
        tenant,
        userId,
        risk,
        band: risk > 0.7 ? 'high' : risk > 0.4 ? 'medium' : 'low',
        factors: [{ feature: 'log_recency_days', value: 3.2, contribution: 0.8 }],
        scoredAt: 1000,
        modelVersion: 'v1',
        alerted: false,
      });
      await store.churnScores.upsertMany([
        rec('a', 0.9),
        rec('b', 0.5),
        rec('c', 0.9),
        rec('d', 0.2),
        rec('e', 0.7),
        rec('x', 0.99, 't2'),
      ]);
      await store.churnScores.upsertMany([{ ...rec('b', 0.95), alerted: true }]);
      expect((await store.churnScores.getMany('t1', ['b', 'zz'])).get('b')).toEqual({
        ...rec('b', 0.95),
        alerted: true,
      });
      const page1 = await store.churnScores.listAtRisk('t1', 0.6, 2);
      expect(page1.map((r) => r.userId)).toEqual(['b', 'a']);
      const last = page1[page1.length - 1]!;
      const page2 = await store.churnScores.listAtRisk('t1', 0.6, 2, { risk: last.risk, userId: last.userId });
      expect(page2.map((r) => r.userId)).toEqual(['c', 'e']);
      expect(await store.churnScores.listAtRisk('t1', 0.6, 2, { risk: 0.7, userId: 'e' })).toEqual([]);
    });

    test('ping answers while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
