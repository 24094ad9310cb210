import { MongoClient, type Document } from 'mongodb';
import { MongoStore, openStore, STORE_PORTS, StoreUnavailableError, type StoredEvent } from '../src';
import { catalogItem, storedEvent } from './fixtures';
import { describeStoreContract } from './store.contract';

// No MongoDB server can run on the build machines: these suites run wherever MONGODB_URL points at a
// replica set (transactions need one): in CI (.github/workflows/mongodb.yml) and locally with Docker
// (README "Storage": `docker run ... mongo:7.0.16 --replSet rs0`, `rs.initiate()`, then
// MONGODB_URL='mongodb://localhost:27017/?directConnection=true' pnpm jest libs/store). Each store opens its own database (the URL may be a seed list of
// several hosts: the name is passed as an option, the URL is never rewritten); all are dropped at the end.
const url = process.env['MONGODB_URL'];

test('an unreachable server fails open with StoreUnavailableError (the real driver, a closed port)', async () => {
  const started = Date.now();
  await expect(
    openStore('mongodb://127.0.0.1:9/aisle?serverSelectionTimeoutMS=300', STORE_PORTS),
  ).rejects.toBeInstanceOf(StoreUnavailableError);
  // The URL's own timeout wins over the adapter's default of 5 s.
  expect(Date.now() - started).toBeLessThan(4000);
});

if (url) {
  const databases: string[] = [];
  let n = 0;
  const openFresh = (): Promise<MongoStore> => {
    const dbName = `aisle_contract_${process.pid}_${Date.now()}_${n++}`;
    databases.push(dbName);
    return MongoStore.open(url, { dbName });
  };
  let admin: MongoClient;
  beforeAll(async () => {
    admin = await MongoClient.connect(url);
  });
  afterAll(async () => {
    for (const name of databases) await admin.db(name).dropDatabase();
    await admin.close();
  });

  describeStoreContract('mongodb', openFresh);

  describe('mongodb specifics (need a server)', () => {
    const ev = (i: number, tenant = 't1'): StoredEvent =>
      storedEvent(`e${String(i).padStart(4, '0')}`, { tenant, userId: `u${i % 7}`, occurredAt: 1_000 + (i % 50) });

    test('every collection exists after open, so none is first created inside a transaction', async () => {
      const store = await openFresh();
      const names = (
        await admin
          .db(databases[databases.length - 1])
          .listCollections()
          .toArray()
      ).map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['events', 'items', 'churn_scores', 'applied', 'feature_meta']));
      await store.close();
    });

    test('scans, stats and pages read indexes: no collection scan, no in-memory sort', async () => {
      const store = await openFresh();
      const db = admin.db(databases[databases.length - 1]);
      await store.events.insertMany([
        ...Array.from({ length: 300 }, (_, i) => ev(i)),
        ...Array.from({ length: 50 }, (_, i) => ev(i, 't2')),
      ]);
      await store.items.upsertMany(Array.from({ length: 30 }, (_, i) => catalogItem(`i${i}`, 1)));
      await store.documents.transact((tx) => tx.putMany('user_features', 't1', new Map([['u1', { n: 1 }]])));
      await db.command({ profile: 2 });
      const drain = async (it: AsyncIterable<unknown>): Promise<number> => {
        let k = 0;
        for await (const _ of it) k++;
        return k;
      };
      expect(await drain(store.events.scan({ tenant: 't1', pageSize: 40 }))).toBe(300);
      expect(await drain(store.events.scan({ pageSize: 40 }))).toBe(350);
      expect(await drain(store.events.scan({ tenant: 't1', fromMs: 1_010, toMs: 1_020, pageSize: 7 }))).toBe(60);
      expect(await store.events.stats('t1')).toEqual({ count: 300, minOccurredAt: 1_000, maxOccurredAt: 1_049 });
      expect((await store.events.stats()).count).toBe(350);
      expect(await drain(store.items.scan('t1'))).toBe(30);
      expect(await drain(store.documents.scan('user_features', 't1'))).toBe(1);
      await store.documents.listIds('user_features', 't1', '', 10);
      await store.churnScores.listAtRisk('t1', 0.5, 10);
      await db.command({ profile: 0 });
      // Profiler entries (system.profile): planSummary names the plan, hasSortStage marks a blocking sort.
      interface Profiled {
        op: string;
        ns: string;
        planSummary?: string;
        hasSortStage?: boolean;
        command?: Document;
      }
      const reads = await db
        .collection<Profiled>('system.profile')
        .find({ op: { $in: ['query', 'getmore'] } })
        .toArray();
      expect(reads.length).toBeGreaterThan(10);
      const bad = reads.filter((r) => /COLLSCAN/.test(r.planSummary ?? '') || r.hasSortStage === true);
      expect(bad.map((r) => ({ ns: r.ns, plan: r.planSummary, command: r.command }))).toEqual([]);
      await store.close();
    });

    test('a scan holds no server cursor while its consumer is between pages', async () => {
      const store = await openFresh();
      const dbName = databases[databases.length - 1];
      await store.events.insertMany(Array.from({ length: 50 }, (_, i) => ev(i)));
      const it = store.events.scan({ pageSize: 10 })[Symbol.asyncIterator]();
      expect((await it.next()).done).toBe(false);
      const idle = await admin
        .db('admin')
        .aggregate([{ $currentOp: { idleCursors: true } }, { $match: { type: 'idleCursor', ns: `${dbName}.events` } }])
        .toArray();
      expect(idle).toEqual([]);
      let rest = 0;
      for (let r = await it.next(); !r.done; r = await it.next()) rest++;
      expect(rest).toBe(49);
      await store.close();
    });
  });
} else {
  // Written to stderr directly: jest does not show console output of suites whose tests are all skipped.
  process.stderr.write(
    '\nSKIPPED: MongoDB store contract suite and MongoDB specifics (MONGODB_URL is not set; no MongoDB server ' +
      'on this machine). The failure paths run here in libs/store/src/mongodb.store.spec.ts.\n',
  );
  describe.skip('store contract: mongodb (skipped: MONGODB_URL not set)', () => {
    test('needs MONGODB_URL', () => undefined);
  });
}
