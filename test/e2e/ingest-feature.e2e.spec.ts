/**
 * Issue #2's acceptance flow with real processes: nats-server on a random port, ingest and feature as
 * separate `node services/<name>/dist/main.js` processes, one SQLite store, gRPC on port 0.
 */
import { Headers, featureV1, Streams } from '@aisle/contracts';
import { generateShop, type GeneratedEvent } from '@aisle/datagen';
import { createGrpcClient, type GrpcClient } from '@aisle/runtime';
import { openStore, type Store, STORE_PORTS } from '@aisle/store';
import {
  eventually,
  itemToProducerJson,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { connectTestBus, consumerCaughtUp, publishAll, readStream } from '../support/bus';
import { referenceFeatures } from '../support/reference-features';
import { producerTraffic, type ProducerMessage } from '../support/traffic';

jest.setTimeout(240_000);

const shop = generateShop({ seed: 7, users: 80, items: 200 });
const validEvents = shop.events.slice(0, 9_000);
const traffic = producerTraffic(validEvents, { invalidShare: 0.05, duplicateShare: 0.05, seed: 11, now: Date.now() });

describe('clickstream in over NATS, features out over gRPC', () => {
  let nats: NatsServerHandle;
  let storeFile: ReturnType<typeof tempSqliteUrl>;
  let ingest: ServiceProcess;
  let feature: ServiceProcess;
  let bus: Awaited<ReturnType<typeof connectTestBus>>;
  let features: GrpcClient<typeof featureV1.FeatureServiceService>;
  let store: Store;

  const env = () => ({ AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url });

  beforeAll(async () => {
    nats = await startNatsServer();
    storeFile = tempSqliteUrl();
    [ingest, feature] = await Promise.all([
      startServiceProcess('ingest', env()),
      startServiceProcess('feature', env()),
    ]);
    bus = await connectTestBus(nats.url);
    features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, {
      deadlineMs: 10_000,
    });
    store = await openStore(storeFile.url, STORE_PORTS);
  });

  afterAll(async () => {
    features?.close();
    await store?.close();
    await bus?.nc.close();
    await Promise.all([ingest?.stop(), feature?.stop()]);
    await nats?.dispose();
    storeFile?.dispose();
  });

  test('10,000 mixed messages: store, DLQ and features are exactly right', async () => {
    expect(traffic.length).toBe(Math.round(9_000 / 0.9));
    expect(traffic.filter((m) => m.kind === 'invalid').length).toBeGreaterThan(450);
    expect(traffic.filter((m) => m.kind === 'duplicate').length).toBeGreaterThan(450);
    const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    await Promise.all(shop.items.map((i) => bus.js.publish('aisle.catalog.v1.upsert', enc(itemToProducerJson(i)))));
    await eventually(async () => (await store.items.count()) === shop.items.length, { what: 'catalog stored' });

    await publishAll(bus.js, traffic);
    const invalid = traffic.filter((m) => m.kind === 'invalid');
    await eventually(
      async () =>
        (await store.events.count()) === validEvents.length &&
        (await bus.jsm.streams.info('DLQ')).state.messages === invalid.length,
      {
        what: 'ingest to finish',
        timeoutMs: 120_000,
      },
    );
    await eventually(() => consumerCaughtUp(bus.jsm, Streams.EVENTS.name, 'feature'), {
      what: 'feature to catch up',
      timeoutMs: 120_000,
    });

    // Store: exactly the valid unique events, with their content.
    const stored = new Map<
      string,
      { type: string; userId: string; itemId: string; occurredAt: number; price: number; quantity: number }
    >();
    for await (const e of store.events.scan()) stored.set(e.eventId, e);
    expect(stored.size).toBe(validEvents.length);
    for (const e of validEvents) {
      const s = stored.get(e.eventId);
      expect(s).toMatchObject({
        type: e.type,
        userId: e.userId,
        itemId: e.itemId,
        occurredAt: e.occurredAt,
        price: e.price,
      });
    }
    // EVENTS: each valid event republished exactly once; ITEMS: one message per item (the accepted catalog).
    expect((await bus.jsm.streams.info('EVENTS')).state.messages).toBe(validEvents.length);
    expect((await bus.jsm.streams.info('ITEMS')).state.messages).toBe(shop.items.length);

    // DLQ: exactly the invalid messages, original bytes, with the right reason.
    const dlq = await readStream(bus.jsm, 'DLQ');
    const key = (data: Uint8Array) => Buffer.from(data).toString('base64');
    const expected = new Map<string, ProducerMessage[]>();
    for (const m of invalid) expected.set(key(m.data), [...(expected.get(key(m.data)) ?? []), m]);
    expect(dlq).toHaveLength(invalid.length);
    for (const d of dlq) {
      const candidates = expected.get(key(d.data));
      expect(candidates).toBeDefined();
      const m = candidates!.shift()!;
      const reason = d.header.get(Headers.rejectReason);
      if (m.expectedReason?.endsWith('invalid JSON') || m.expectedReason === 'payload: invalid protobuf')
        expect(reason.startsWith(m.expectedReason)).toBe(true);
      else expect(reason).toBe(m.expectedReason);
      expect(d.header.get(Headers.originalSubject)).toBe(m.subject);
    }

    await expectFeaturesToMatchReference(features, validEvents);
  });

  test('replaying the whole event stream leaves every feature unchanged', async () => {
    const before = await snapshot(features);
    await feature.stop();
    await bus.jsm.consumers.delete(Streams.EVENTS.name, 'feature');
    feature = await startServiceProcess('feature', env());
    features.close();
    features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, {
      deadlineMs: 10_000,
    });
    await eventually(
      async () => {
        const c = await bus.jsm.consumers.info(Streams.EVENTS.name, 'feature').catch(() => undefined);
        return (
          c !== undefined &&
          c.delivered.stream_seq >= validEvents.length &&
          (await consumerCaughtUp(bus.jsm, Streams.EVENTS.name, 'feature'))
        );
      },
      { what: 'replay to finish', timeoutMs: 120_000 },
    );
    expect(await snapshot(features)).toEqual(before);
  });
});

async function snapshot(features: GrpcClient<typeof featureV1.FeatureServiceService>) {
  const users = [...new Set(validEvents.map((e) => e.userId))].sort();
  const items = shop.items.map((i) => i.itemId);
  const [u, i] = await Promise.all([
    features.getUserFeatures({ tenant: '', userIds: users, recentLimit: 0 }),
    features.getItemFeatures({ tenant: '', itemIds: items, coVisitLimit: 100 }),
  ]);
  return { u, i };
}

const close = (actual: number, expected: number) => {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(expected)));
};

async function expectFeaturesToMatchReference(
  features: GrpcClient<typeof featureV1.FeatureServiceService>,
  events: readonly GeneratedEvent[],
) {
  const ref = referenceFeatures(events, shop.items);
  const userIds = [...ref.users.keys()];
  const { users } = await features.getUserFeatures({ tenant: '', userIds: [...userIds, 'never-seen'], recentLimit: 0 });
  expect(users).toHaveLength(userIds.length + 1);
  expect(users[users.length - 1]).toMatchObject({ userId: 'never-seen', known: false });
  users.slice(0, -1).forEach((u, k) => {
    const r = ref.users.get(userIds[k]!)!;
    expect(u.userId).toBe(userIds[k]);
    expect(u.known).toBe(true);
    expect(u.counts).toEqual({
      view: r.counts['view'],
      click: r.counts['click'],
      addToCart: r.counts['add_to_cart'],
      removeFromCart: r.counts['remove_from_cart'],
      purchase: r.counts['purchase'],
      search: r.counts['search'],
    });
    expect(u.firstSeenAt?.getTime()).toBe(r.firstSeen);
    expect(u.lastSeenAt?.getTime()).toBe(r.lastSeen);
    expect(u.sessions).toBe(r.sessions);
    expect(u.purchases).toBe(r.purchases);
    expect(u.unitsPurchased).toBe(r.units);
    close(u.spend, r.spend);
    expect(u.lastPurchaseAt?.getTime()).toBe(r.lastPurchaseAt);
    expect(u.recent.map((x) => [x.itemId, x.type, x.occurredAt?.getTime()])).toEqual(
      r.recent.map((x) => [x.itemId, x.type, x.at]),
    );
    expect(u.recentQueries).toEqual(r.queries);
    expect(new Set(u.categoryAffinity.map((a) => a.category))).toEqual(new Set(r.affinity.keys()));
    for (const a of u.categoryAffinity) close(a.score, r.affinity.get(a.category)!);
    if (r.price) {
      expect(u.priceBand?.count).toBe(r.price.n);
      close(u.priceBand!.min, r.price.min);
      close(u.priceBand!.max, r.price.max);
      close(u.priceBand!.mean, r.price.mean);
      expect(Math.abs(u.priceBand!.stddev - r.price.std)).toBeLessThan(1e-6 * Math.max(1, r.price.mean));
    }
  });

  const itemIds = shop.items.map((i) => i.itemId);
  const { items } = await features.getItemFeatures({
    tenant: '',
    itemIds: [...itemIds, 'no-such-item'],
    coVisitLimit: 100,
  });
  expect(items[items.length - 1]).toMatchObject({ itemId: 'no-such-item', known: false, inCatalog: false });
  items.slice(0, -1).forEach((it, k) => {
    const catalogItem = shop.items[k]!;
    expect(it).toMatchObject({
      itemId: catalogItem.itemId,
      known: true,
      inCatalog: true,
      title: catalogItem.title,
      category: catalogItem.category,
    });
    const r = ref.items.get(catalogItem.itemId);
    expect(it.views).toBe(r?.views ?? 0);
    expect(it.clicks).toBe(r?.clicks ?? 0);
    expect(it.addToCarts).toBe(r?.carts ?? 0);
    expect(it.purchases).toBe(r?.purchases ?? 0);
    close(it.popularity1d, r?.pop1 ?? 0);
    close(it.popularity7d, r?.pop7 ?? 0);
    close(it.popularity30d, r?.pop30 ?? 0);
    close(it.ctr, ((r?.clicks ?? 0) + 1) / ((r?.views ?? 0) + 20));
    close(it.conversionRate, ((r?.purchases ?? 0) + 0.5) / ((r?.views ?? 0) + 50));
    const refCo = [...(r?.coVisits ?? new Map<string, number>())]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 100);
    expect(it.coVisited.map((c) => [c.itemId, c.score])).toEqual(refCo);
  });
}
