/**
 * Nothing lost, nothing duplicated: ingest killed with SIGKILL mid-stream, and the store unavailable for
 * a while, both with real processes.
 */
import { featureV1, ingestV1, Streams } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { createGrpcClient, grpc, isGrpcError } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import {
  eventually,
  healthCheck,
  itemToProducerJson,
  listServicesByReflection,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
} from '@aisle/testkit';
import Database from 'better-sqlite3';
import { connectTestBus, consumerCaughtUp, publishAll } from '../support/bus';
import { referenceFeatures } from '../support/reference-features';
import { producerTraffic } from '../support/traffic';

jest.setTimeout(240_000);

const shop = generateShop({ seed: 3, users: 40, items: 120 });
const validEvents = shop.events.slice(0, 4_500);
const traffic = producerTraffic(validEvents, { invalidShare: 0.05, duplicateShare: 0.05, seed: 5, now: Date.now() });
const invalidCount = traffic.filter((m) => m.kind === 'invalid').length;

let nats: NatsServerHandle;
beforeEach(async () => {
  nats = await startNatsServer();
});
afterEach(async () => {
  await nats.dispose();
});

async function expectExactlyOnce(
  storeUrl: string,
  bus: Awaited<ReturnType<typeof connectTestBus>>,
  catalogItems = 0,
): Promise<void> {
  const store = await openStore(storeUrl, STORE_PORTS);
  try {
    await eventually(
      async () =>
        (await store.events.count()) === validEvents.length &&
        (await bus.jsm.streams.info('DLQ')).state.messages === invalidCount,
      {
        what: 'all input handled',
        timeoutMs: 120_000,
      },
    );
    const ids = new Set<string>();
    for await (const e of store.events.scan()) ids.add(e.eventId);
    expect(ids).toEqual(new Set(validEvents.map((e) => e.eventId)));
    await eventually(() => consumerCaughtUp(bus.jsm, Streams.CLICKSTREAM.name, 'ingest-clickstream'), {
      what: 'ingest consumer caught up',
    });
    expect((await bus.jsm.streams.info('EVENTS')).state.messages).toBe(validEvents.length);
    if (catalogItems > 0) expect((await bus.jsm.streams.info('ITEMS')).state.messages).toBe(catalogItems);
    expect((await bus.jsm.streams.info('DLQ')).state.messages).toBe(invalidCount);
  } finally {
    await store.close();
  }
}

test('SIGKILL of ingest mid-stream loses and duplicates nothing', async () => {
  const storeFile = tempSqliteUrl();
  const env = {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_INGEST_BATCH_SIZE: '25',
    AISLE_NATS_ACK_WAIT: '2s',
  };
  const bus = await connectTestBus(nats.url);
  const store = await openStore(storeFile.url, STORE_PORTS);
  try {
    // Provision the streams by starting ingest once, then queue all traffic while it is down.
    const first = await startServiceProcess('ingest', env);
    first.kill('SIGKILL');
    await first.exited;
    await publishAll(bus.js, traffic);
    const victim = await startServiceProcess('ingest', env);
    await eventually(async () => (await store.events.count()) > 1_000, {
      what: 'ingest to be mid-stream',
      intervalMs: 10,
    });
    victim.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    const storedAtKill = await store.events.count();
    expect(storedAtKill).toBeLessThan(validEvents.length);
    const survivor = await startServiceProcess('ingest', env);
    await expectExactlyOnce(storeFile.url, bus);
    await survivor.stop();
  } finally {
    await store.close();
    await bus.nc.close();
    storeFile.dispose();
  }
});

test('store unavailable for a while: nothing lost once it is back, features still exact', async () => {
  const storeFile = tempSqliteUrl('?busy_timeout=100');
  const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url };
  const bus = await connectTestBus(nats.url);
  const [ingest, feature] = await Promise.all([
    startServiceProcess('ingest', env),
    startServiceProcess('feature', env),
  ]);
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, {
    deadlineMs: 10_000,
  });
  try {
    const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    await Promise.all(shop.items.map((i) => bus.js.publish('aisle.catalog.v1.upsert', enc(itemToProducerJson(i)))));
    const store = await openStore(storeFile.url, STORE_PORTS);
    await eventually(async () => (await store.items.count()) === shop.items.length, { what: 'catalog stored' });
    await store.close();

    const locker = new Database(storeFile.path, { timeout: 5_000 });
    locker.exec('BEGIN EXCLUSIVE');
    await publishAll(bus.js, traffic);
    await eventually(() => ingest.logs.some((l) => l['msg'] === 'batch failed; redelivering with backoff'), {
      what: 'ingest to hit the locked store',
    });
    await new Promise((r) => setTimeout(r, 2_000));
    locker.exec('ROLLBACK');
    locker.close();

    await expectExactlyOnce(storeFile.url, bus, shop.items.length);
    await eventually(() => consumerCaughtUp(bus.jsm, Streams.EVENTS.name, 'feature'), {
      what: 'feature caught up',
      timeoutMs: 120_000,
    });
    const ref = referenceFeatures(validEvents, shop.items);
    const userIds = [...ref.users.keys()];
    const { users } = await features.getUserFeatures({ tenant: '', userIds, recentLimit: 0 });
    users.forEach((u, k) => {
      const r = ref.users.get(userIds[k]!)!;
      expect([u.counts?.view, u.counts?.purchase, u.sessions, u.purchases]).toEqual([
        r.counts['view'],
        r.counts['purchase'],
        r.sessions,
        r.purchases,
      ]);
    });
    const { items } = await features.getItemFeatures({
      tenant: '',
      itemIds: shop.items.map((i) => i.itemId),
      coVisitLimit: 5,
    });
    items.forEach((it) => expect(it.views).toBe(ref.items.get(it.itemId)?.views ?? 0));
  } finally {
    features.close();
    await Promise.all([ingest.stop(), feature.stop()]);
    await bus.nc.close();
    storeFile.dispose();
  }
});

test('a 20 s SQLite write lock: health, Track and reflection keep answering, the event loop is never blocked, nothing is lost', async () => {
  const storeFile = tempSqliteUrl();
  const ingest = await startServiceProcess('ingest', { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url });
  const address = `127.0.0.1:${ingest.grpcPort}`;
  const client = createGrpcClient(ingestV1.IngestServiceService, address, { deadlineMs: 2000 });
  const bus = await connectTestBus(nats.url);
  const store = await openStore(storeFile.url, STORE_PORTS);
  const lagMax = async () => {
    const text = await (await fetch(`http://127.0.0.1:${ingest.metricsPort}/metrics`)).text();
    return Number(/^aisle_nodejs_eventloop_lag_max_seconds\S* (\S+)$/m.exec(text)?.[1]);
  };
  const events = validEvents.slice(0, 600);
  const locker = new Database(storeFile.path, { timeout: 5_000 });
  try {
    await publishAll(
      bus.js,
      producerTraffic(events.slice(0, 100), { invalidShare: 0, duplicateShare: 0, seed: 1, now: Date.now() }),
    );
    await eventually(async () => (await store.events.count()) === 100, { what: 'first events stored' });
    await lagMax(); // resets the event loop delay histogram
    locker.exec('BEGIN EXCLUSIVE');
    const lockedUntil = Date.now() + 20_000;
    await publishAll(
      bus.js,
      producerTraffic(events.slice(100), { invalidShare: 0, duplicateShare: 0, seed: 2, now: Date.now() }),
    );
    const probes: Array<{ what: string; ms: number; ok: boolean }> = [];
    const probe = async (what: string, call: () => Promise<boolean>) => {
      const t0 = Date.now();
      const ok = await call().catch(() => false);
      probes.push({ what, ms: Date.now() - t0, ok });
    };
    let n = 0;
    while (Date.now() < lockedUntil) {
      await probe('health', async () => (await healthCheck(address, '', 1000)) === 'SERVING');
      if (n % 10 === 0) {
        await probe('reflection', async () => (await listServicesByReflection(address, 1000)).length === 2);
        await probe('track', async () => {
          const r = await client.track(
            ingestV1.TrackRequest.fromPartial({
              events: [{ eventId: `lock-${n}`, type: 'view', userId: 'u', itemId: 'i', occurredAt: new Date() }],
            }),
            { deadlineMs: 1000 },
          );
          return r.accepted === 1;
        });
      }
      n++;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await store.events.count()).toBe(100); // the lock really held
    const lag = await lagMax();
    locker.exec('ROLLBACK');
    const tracked = probes.filter((p) => p.what === 'track').length;
    await eventually(async () => (await store.events.count()) === events.length + tracked, {
      what: 'everything stored after the lock',
      timeoutMs: 60_000,
    });
    console.log(
      `during a 20 s write lock: ${probes.length} probes, slowest ${Math.max(...probes.map((p) => p.ms))} ms, event loop lag max ${(lag * 1000).toFixed(0)} ms`,
    );
    expect(probes.filter((p) => !p.ok)).toEqual([]);
    expect(probes.length).toBeGreaterThan(40);
    // Store calls pause asynchronously (at most 50 ms between retries); a loaded machine adds its own noise.
    expect(lag).toBeLessThan(0.5);
  } finally {
    if (locker.open) locker.close();
    client.close();
    await store.close();
    await bus.nc.close();
    await ingest.stop();
    storeFile.dispose();
  }
});

test('NATS lost: health says NOT_SERVING (liveness stays SERVING), Track answers UNAVAILABLE at once; both recover', async () => {
  const storeFile = tempSqliteUrl();
  const ingest = await startServiceProcess('ingest', { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url });
  const address = `127.0.0.1:${ingest.grpcPort}`;
  const client = createGrpcClient(ingestV1.IngestServiceService, address, { deadlineMs: 3000 });
  const track = (eventId: string) =>
    client.track(
      ingestV1.TrackRequest.fromPartial({
        events: [{ eventId, type: 'view', userId: 'u', itemId: 'i', occurredAt: new Date() }],
      }),
    );
  try {
    expect((await track('before')).accepted).toBe(1);
    expect(await healthCheck(address)).toBe('SERVING');
    await nats.stop();
    await eventually(async () => (await healthCheck(address)) === 'NOT_SERVING', {
      what: 'health to notice',
      timeoutMs: 5000,
    });
    expect(await healthCheck(address, 'aisle.ingest.v1.IngestService')).toBe('NOT_SERVING');
    expect(await healthCheck(address, 'liveness')).toBe('SERVING');
    const t0 = Date.now();
    const err: unknown = await track('during').catch((e: unknown) => e);
    expect(isGrpcError(err) && err.code).toBe(grpc.status.UNAVAILABLE);
    expect(Date.now() - t0).toBeLessThan(1000);
    await nats.restart();
    await eventually(async () => (await healthCheck(address)) === 'SERVING', {
      what: 'health to recover',
      timeoutMs: 20_000,
    });
    expect((await track('after')).accepted).toBe(1);
  } finally {
    client.close();
    await ingest.stop();
    storeFile.dispose();
  }
});
