import { StoreError, type ChurnScoreRecord, type Store, type StoredEvent } from '../src';
import { catalogItem, storedEvent } from './fixtures';

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

    const ev = (id: string, at: number, over: Partial<StoredEvent> = {}): StoredEvent =>
      storedEvent(id, { sessionId: 's1', occurredAt: at, ingestedAt: at + 5, context: { surface: 'home' }, ...over });
    const item = catalogItem;

    test('events are stored once per (tenant, event id), whatever the batch', async () => {
      expect(await store.events.insertMany([ev('a', 3), ev('b', 1), ev('a', 3)])).toEqual({
        inserted: 2,
        conflicting: [],
      });
      // A re-send is ingested again later: ingestedAt alone does not make it different.
      expect(await store.events.insertMany([ev('b', 1, { ingestedAt: 99 }), ev('c', 2)])).toEqual({
        inserted: 1,
        conflicting: [],
      });
      expect(await store.events.insertMany([ev('a', 3, { tenant: 't2' })])).toEqual({ inserted: 1, conflicting: [] });
      expect(await store.events.count()).toBe(4);
      expect(await store.events.count({ tenant: 't1' })).toBe(3);
    });

    test('an event id already stored (or earlier in the batch) with other content is a conflict, not written', async () => {
      await store.events.insertMany([ev('a', 3)]);
      const r = await store.events.insertMany([
        ev('a', 4), // other time than stored
        ev('n', 1),
        ev('n', 1, { userId: 'someone else' }), // other content than earlier in this batch
        ev('a', 3, { ingestedAt: 7 }), // a re-send
        ev('a', 3, { context: { k: 'v' } }),
      ]);
      expect(r).toEqual({ inserted: 1, conflicting: [0, 2, 4] });
      const stored: StoredEvent[] = [];
      for await (const e of store.events.scan({ tenant: 't1' })) stored.push(e);
      expect(stored.map((e) => [e.eventId, e.occurredAt, e.userId])).toEqual([
        ['n', 1, ev('n', 1).userId],
        ['a', 3, ev('a', 3).userId],
      ]);
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
        const first = await tx.markApplied('c1', 't1', ['e1', 'e3', 'e1']);
        const again = await tx.markApplied('c1', 't1', ['e1', 'e4']);
        await tx.putMany('user_features', 't1', new Map([['u1', { n: 1 }]]));
        return [first, again];
      });
      expect(applied).toEqual([new Set(['e1', 'e3']), new Set(['e4'])]);
      await expect(
        store.documents.transact(async (tx) => {
          await tx.markApplied('c1', 't1', ['e2']);
          await tx.putMany('user_features', 't1', new Map([['u1', { n: 2 }]]));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await store.documents.getMany('user_features', 't1', ['u1'])).get('u1')).toEqual({ n: 1 });
      // The rolled-back marker must not have stuck.
      expect(await store.documents.transact((tx) => tx.markApplied('c1', 't1', ['e2', 'e3']))).toEqual(new Set(['e2']));
      expect(await store.documents.transact((tx) => tx.markApplied('c2', 't1', ['e1']))).toEqual(new Set(['e1']));
      expect(await store.documents.transact((tx) => tx.markApplied('c2', 't1', []))).toEqual(new Set());
    });

    test('retention deletes events that occurred before the cutoff, of every tenant, and nothing else', async () => {
      await store.events.insertMany([
        ev('old', 100),
        ev('edge', 200),
        ev('new', 300),
        ev('old2', 150, { tenant: 't2' }),
      ]);
      expect(await store.events.deleteBefore(200)).toEqual({ deleted: 2 });
      const left: string[] = [];
      for await (const e of store.events.scan()) left.push(`${e.tenant}/${e.eventId}`);
      expect(left).toEqual(['t1/edge', 't1/new']);
      expect(await store.events.deleteBefore(200)).toEqual({ deleted: 0 });
      // Deleted means forgotten: the same event id is stored anew.
      expect(await store.events.insertMany([ev('old', 100)])).toEqual({ inserted: 1, conflicting: [] });
    });

    test("retention forgets one consumer's applied markers recorded before the cutoff", async () => {
      await store.documents.transact((tx) => tx.markApplied('c1', 't1', ['e1']));
      await store.documents.transact((tx) => tx.markApplied('c1', 't2', ['e2']));
      await store.documents.transact((tx) => tx.markApplied('c2', 't1', ['e1']));
      await new Promise((r) => setTimeout(r, 20));
      const cutoff = Date.now();
      await new Promise((r) => setTimeout(r, 20));
      await store.documents.transact((tx) => tx.markApplied('c1', 't1', ['e3']));
      expect(await store.documents.pruneApplied('c1', 0)).toEqual({ deleted: 0 });
      expect(await store.documents.pruneApplied('c1', cutoff)).toEqual({ deleted: 2 });
      // c1's old markers are gone (e1, e2 count as new again); its recent one and c2's stay.
      expect(await store.documents.transact((tx) => tx.markApplied('c1', 't1', ['e1', 'e3']))).toEqual(new Set(['e1']));
      expect(await store.documents.transact((tx) => tx.markApplied('c1', 't2', ['e2']))).toEqual(new Set(['e2']));
      expect(await store.documents.transact((tx) => tx.markApplied('c2', 't1', ['e1']))).toEqual(new Set());
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

    const churn = (userId: string, risk: number, tenant = 't1'): ChurnScoreRecord => ({
      tenant,
      userId,
      risk,
      band: risk > 0.7 ? 'high' : risk > 0.4 ? 'medium' : 'low',
      factors: [{ feature: 'log_recency_days', value: 3.2, contribution: 0.8 }],
      scoredAt: 1000,
      modelVersion: 'v1',
      alerted: false,
    });

    test('churn scores: upsert, read back, and page by risk', async () => {
      const rec = churn;
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

    test('concurrent batches with the same events store each event once and count it once', async () => {
      // Six batches of 20 over 40 ids, overlapping each other and repeating ids within a batch.
      const batches = Array.from({ length: 6 }, (_, b) =>
        Array.from({ length: 20 }, (_, i) => ev(`e${(b * 7 + i * 3) % 40}`, 100 + ((b * 7 + i * 3) % 40))),
      );
      const unique = new Set(batches.flat().map((e) => e.eventId)).size;
      const results = await Promise.all(batches.map((b) => store.events.insertMany(b)));
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(unique);
      expect(await store.events.count({ tenant: 't1' })).toBe(unique);
      // A redelivery of all of them later inserts nothing.
      expect((await Promise.all(batches.map((b) => store.events.insertMany(b)))).every((r) => r.inserted === 0)).toBe(
        true,
      );
    });

    test('concurrent writers of a new item keep its newest version', async () => {
      // Versions arrive out of order and at once, for items that do not exist yet: the oldest may win the
      // race to create an item, and a newer version must still replace it.
      const order = [5, 11, 0, 7, 3, 9, 1, 10, 4, 8, 2, 6];
      const ids = ['n1', 'n2', 'n3', 'n4'];
      const writes = ids.flatMap((id) => order.map((v) => item(id, 100 + v, { price: v })));
      const results = await Promise.all(writes.map((w) => store.items.upsertMany([w])));
      expect(results.every((r) => r.written === 0 || r.written === 1)).toBe(true);
      const got = await store.items.getMany('t1', ids);
      for (const id of ids) expect(got.get(id)).toEqual(item(id, 111, { price: 11 }));
      // Within one batch too, whatever the order.
      expect(await store.items.upsertMany([item('n5', 3), item('n5', 9, { price: 2 }), item('n5', 5)])).toEqual({
        written: 2,
      });
      expect((await store.items.getMany('t1', ['n5'])).get('n5')?.updatedAt).toBe(9);
    });

    test('a limit of zero or less returns nothing', async () => {
      await store.documents.transact((tx) =>
        tx.putMany(
          'user_features',
          't1',
          new Map([
            ['a', {}],
            ['b', {}],
          ]),
        ),
      );
      await store.churnScores.upsertMany([
        {
          tenant: 't1',
          userId: 'u',
          risk: 0.9,
          band: 'high',
          factors: [],
          scoredAt: 1,
          modelVersion: 'v',
          alerted: false,
        },
      ]);
      for (const limit of [0, -1, -5]) {
        expect(await store.documents.listIds('user_features', 't1', '', limit)).toEqual([]);
        expect(await store.churnScores.listAtRisk('t1', 0, limit)).toEqual([]);
      }
      expect(await store.documents.listIds('user_features', 't1', '', 1)).toEqual(['a']);
    });

    test('a record with a time or number that is not finite is refused whole, naming it', async () => {
      for (const bad of [NaN, Infinity, -Infinity, 9e15]) {
        const events = [ev('ok', 1), ev('bad', bad)];
        await expect(store.events.insertMany(events)).rejects.toThrow(StoreError);
        await expect(store.events.insertMany(events)).rejects.toThrow(/event 'bad' of tenant 't1': occurredAt/);
        await expect(store.items.upsertMany([item('ok', 1), item('bad', bad)])).rejects.toThrow(
          /item 'bad' of tenant 't1': updatedAt/,
        );
        await expect(
          store.churnScores.upsertMany([
            {
              tenant: 't1',
              userId: 'bad',
              risk: 0.5,
              band: 'medium',
              factors: [],
              scoredAt: bad,
              modelVersion: 'v',
              alerted: false,
            },
          ]),
        ).rejects.toThrow(/user 'bad' of tenant 't1': scoredAt/);
      }
      await expect(store.events.insertMany([ev('nan-price', 1, { price: NaN })])).rejects.toThrow(/price/);
      await expect(store.items.upsertMany([item('inf-price', 1, { price: Infinity })])).rejects.toThrow(/price/);
      // Nothing of a refused batch was written.
      expect(await store.events.count()).toBe(0);
      expect(await store.items.count()).toBe(0);
      expect(await store.churnScores.getMany('t1', ['bad'])).toEqual(new Map());
    });

    test('keys made of several strings never collide, whatever characters they hold', async () => {
      const sep = '\u001f';
      expect(
        await store.events.insertMany([ev('c', 1, { tenant: `a${sep}b` }), ev(`b${sep}c`, 1, { tenant: 'a' })]),
      ).toEqual({ inserted: 2, conflicting: [] });
      expect(
        await store.items.upsertMany([item('c', 1, { tenant: `a${sep}b` }), item(`b${sep}c`, 1, { tenant: 'a' })]),
      ).toEqual({ written: 2 });
      expect((await store.items.getMany('a', [`b${sep}c`])).get(`b${sep}c`)?.tenant).toBe('a');
      await store.documents.transact(async (tx) => {
        await tx.putMany('user_features', `a${sep}b`, new Map([['c', { v: 1 }]]));
        await tx.putMany('user_features', 'a', new Map([[`b${sep}c`, { v: 2 }]]));
      });
      expect(await store.documents.getMany('user_features', 'a', [`b${sep}c`])).toEqual(
        new Map([[`b${sep}c`, { v: 2 }]]),
      );
      expect(await store.documents.count('user_features')).toBe(2);
      const marked = await store.documents.transact(async (tx) => [
        await tx.markApplied(`c${sep}t`, 'x', ['e']),
        await tx.markApplied('c', `t${sep}x`, ['e']),
        await tx.markApplied('c', 't', [`x${sep}e`]),
      ]);
      expect(marked).toEqual([new Set(['e']), new Set(['e']), new Set([`x${sep}e`])]);
    });

    test("forgetting a user erases their events, documents, markers, score and stream positions, and nobody else's", async () => {
      await store.events.insertMany([
        ev('x1', 1, { userId: 'gone' }),
        ev('x2', 2, { userId: 'gone' }),
        ev('k1', 3, { userId: 'kept' }),
        ev('x3', 4, { userId: 'gone', tenant: 't2' }),
      ]);
      expect(await store.events.forgetUser('t1', 'gone')).toEqual({
        deleted: 2,
        eventIds: expect.arrayContaining(['x1', 'x2']) as string[],
      });
      expect(await store.events.forgetUser('t1', 'gone')).toEqual({ deleted: 0, eventIds: [] });
      expect(await store.events.count({ tenant: 't1' })).toBe(1);
      expect(await store.events.count({ tenant: 't2' })).toBe(1);

      await store.documents.transact(async (tx) => {
        await tx.putMany(
          'user_features',
          't1',
          new Map([
            ['gone', { n: 1 }],
            ['kept', { n: 2 }],
          ]),
        );
        await tx.markApplied('feature', 't1', ['x1', 'x2', 'k1']);
      });
      await store.documents.transact((tx) => tx.deleteMany('user_features', 't1', ['gone']));
      expect([...(await store.documents.getMany('user_features', 't1', ['gone', 'kept'])).keys()]).toEqual(['kept']);
      expect(await store.documents.forgetApplied('feature', 't1', ['x1', 'x2'])).toBe(2);
      // Markers forgotten: the events would apply again; the other user's still count as applied.
      expect(await store.documents.transact((tx) => tx.markApplied('feature', 't1', ['x1', 'k1']))).toEqual(
        new Set(['x1']),
      );
      expect(await store.documents.deleteMany('user_features', 't1', ['kept', 'never'])).toBe(1);

      await store.churnScores.upsertMany([churn('gone', 0.9), churn('kept', 0.2)]);
      expect(await store.churnScores.deleteMany('t1', ['gone'])).toBe(1);
      expect([...(await store.churnScores.getMany('t1', ['gone', 'kept'])).keys()]).toEqual(['kept']);

      await store.messages.record([
        { tenant: 't1', userId: 'gone', stream: 'EVENTS', seq: 7 },
        { tenant: 't1', userId: 'gone', stream: 'EVENTS', seq: 3 },
        { tenant: 't1', userId: 'gone', stream: 'FEATURES', seq: 5 },
        { tenant: 't1', userId: 'kept', stream: 'EVENTS', seq: 4 },
      ]);
      expect(await store.messages.take('t1', 'gone', ['EVENTS'])).toEqual([
        { stream: 'EVENTS', seq: 3 },
        { stream: 'EVENTS', seq: 7 },
      ]);
      expect(await store.messages.take('t1', 'gone', ['EVENTS'])).toEqual([]);
      expect(await store.messages.take('t1', 'gone', ['FEATURES'])).toEqual([{ stream: 'FEATURES', seq: 5 }]);
      expect(await store.messages.take('t1', 'kept', ['EVENTS', 'FEATURES'])).toEqual([{ stream: 'EVENTS', seq: 4 }]);
      await expect(store.scrub()).resolves.toBeUndefined();
    });

    test('message index retention: one stream, recorded before the cutoff, at most `limit` a pass', async () => {
      await store.messages.record([
        { tenant: 't1', userId: 'a', stream: 'FEATURES', seq: 1 },
        { tenant: 't1', userId: 'b', stream: 'FEATURES', seq: 2 },
        { tenant: 't2', userId: 'a', stream: 'FEATURES', seq: 3 },
        { tenant: 't1', userId: 'a', stream: 'CHURN', seq: 4 },
      ]);
      const recorded = Date.now();
      // Nothing was recorded before an hour ago.
      expect(await store.messages.pruneBefore('FEATURES', recorded - 3_600_000, 10)).toEqual({
        deleted: 0,
        more: false,
      });
      const after = recorded + 1_000;
      const first = await store.messages.pruneBefore('FEATURES', after, 2);
      expect(first).toEqual({ deleted: 2, more: true });
      expect(await store.messages.pruneBefore('FEATURES', after, 2)).toEqual({ deleted: 1, more: false });
      expect(await store.messages.take('t1', 'a', ['FEATURES', 'CHURN'])).toEqual([{ stream: 'CHURN', seq: 4 }]);
    });

    test('forget markers: recorded by keyed hash, moved only later, listed per tenant, pruned by time', async () => {
      await store.forgotten.mark('t1', 'k-a', 1_000);
      await store.forgotten.mark('t1', 'k-a', 500); // an older repeat does not move it back
      await store.forgotten.mark('t1', 'k-b', 2_000);
      await store.forgotten.mark('t2', 'k-a', 3_000);
      expect(await store.forgotten.getMany('t1', ['k-a', 'k-c', 'k-a'])).toEqual(new Map([['k-a', 1_000]]));
      expect(await store.forgotten.list('t1')).toEqual(
        new Map([
          ['k-a', 1_000],
          ['k-b', 2_000],
        ]),
      );
      await store.forgotten.mark('t1', 'k-a', 2_500);
      expect(await store.forgotten.pruneBefore(2_200)).toEqual({ deleted: 1 });
      expect(await store.forgotten.list('t1')).toEqual(new Map([['k-a', 2_500]]));
      expect(await store.forgotten.list('t2')).toEqual(new Map([['k-a', 3_000]]));
    });

    test('ping answers while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
