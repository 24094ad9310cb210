/**
 * Chaos, lean: the whole stack under a steady producer (JetStream and gRPC Track) while each service
 * and nats-server is killed and restarted, and the dependencies of others are frozen (SIGSTOP) for a
 * while. At the end: every acknowledged event is stored exactly once and counted once in the features,
 * every RPC was answered within its deadline or with UNAVAILABLE (calls to the very process that was
 * down excepted), and every service is SERVING again. `pnpm bench chaos` runs the long version with
 * figures.
 */
import { featureV1, Streams } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { createGrpcClient } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import { eventually, publishShop, tempSqliteUrl } from '@aisle/testkit';
import { connectTestBus, consumerCaughtUp } from '../support/bus';
import {
  allServing,
  applyFault,
  RpcProber,
  startChaosStack,
  SteadyProducer,
  violations,
  type ChaosStack,
  type Fault,
} from '../support/chaos';
import { referenceFeatures } from '../support/reference-features';

jest.setTimeout(600_000);

const DEADLINE_MS = 1000;
const shop = generateShop({ seed: 11, users: 60, items: 80 });

let stack: ChaosStack;
let storeFile: ReturnType<typeof tempSqliteUrl>;

beforeAll(async () => {
  storeFile = tempSqliteUrl();
  stack = await startChaosStack(storeFile.url);
});

afterAll(async () => {
  await stack?.stop();
  storeFile?.dispose();
});

test('kills and freezes, one at a time: nothing lost or doubled, every RPC answered, all SERVING again', async () => {
  const bus = await connectTestBus(stack.nats.url);
  await publishShop(bus.js, shop.items, []);
  await bus.nc.close();
  const producer = new SteadyProducer(stack.nats.url, stack.address('ingest'), shop.events, {
    perSecond: 60,
    trackEvery: 10,
  });
  const prober = new RpcProber(stack, { everyMs: 300, deadlineMs: DEADLINE_MS, userId: shop.events[0]!.userId });
  await producer.start();
  prober.start();
  const faults: Fault[] = [];
  const settle = () => new Promise((r) => setTimeout(r, 1500));
  try {
    await settle();
    for (const target of ['ingest', 'feature', 'embedding-inference', 'ranking', 'churn-prediction'] as const) {
      faults.push(await applyFault(stack, target, 'kill', 0));
      await settle();
    }
    for (const target of ['feature', 'embedding-inference', 'nats-server'] as const) {
      faults.push(await applyFault(stack, target, 'stop', 3000));
      await settle();
    }
    faults.push(await applyFault(stack, 'nats-server', 'kill', 2000));
    await settle();
  } finally {
    await prober.stop();
  }
  const sent = await producer.stop();
  const acked = shop.events.filter((e) => producer.acked.has(e.eventId));
  expect(acked).toHaveLength(sent);
  expect(sent).toBeGreaterThan(500);

  // Every service is back.
  expect(await allServing(stack, 60_000)).toEqual({
    ingest: 'SERVING',
    feature: 'SERVING',
    'embedding-inference': 'SERVING',
    ranking: 'SERVING',
    'churn-prediction': 'SERVING',
  });

  // Every RPC was answered within its deadline, or with UNAVAILABLE.
  const bad = violations(prober.outcomes, faults, {
    deadlineMs: DEADLINE_MS,
    marginMs: 250,
    graceMs: 3000,
    stalls: prober.stalls,
  });
  expect(bad).toEqual([]);
  expect(prober.outcomes.length).toBeGreaterThan(100);

  // Nothing lost, nothing doubled: in the store, downstream, and in the features.
  const busAfter = await connectTestBus(stack.nats.url);
  const store = await openStore(storeFile.url, STORE_PORTS);
  const features = createGrpcClient(featureV1.FeatureServiceService, stack.address('feature'), { deadlineMs: 10_000 });
  try {
    await eventually(async () => (await store.events.count()) >= acked.length, {
      what: 'every acknowledged event stored',
      timeoutMs: 120_000,
    });
    const stored = new Set<string>();
    for await (const e of store.events.scan()) stored.add(e.eventId);
    expect(stored).toEqual(new Set(acked.map((e) => e.eventId)));
    await eventually(
      async () =>
        (await consumerCaughtUp(busAfter.jsm, Streams.CLICKSTREAM.name, 'ingest-clickstream')) &&
        (await consumerCaughtUp(busAfter.jsm, Streams.EVENTS.name, 'feature')),
      { what: 'ingest and feature caught up', timeoutMs: 120_000 },
    );
    expect((await busAfter.jsm.streams.info(Streams.EVENTS.name)).state.messages).toBe(acked.length);
    expect((await busAfter.jsm.streams.info(Streams.ITEMS.name)).state.messages).toBe(shop.items.length);
    const ref = referenceFeatures(acked, shop.items);
    const userIds = [...ref.users.keys()];
    const { users } = await features.getUserFeatures({ tenant: '', userIds, recentLimit: 0 });
    const got = users.map((u) => [u.userId, u.counts?.view, u.counts?.purchase, u.sessions, u.purchases]);
    const want = userIds.map((id) => {
      const r = ref.users.get(id)!;
      return [id, r.counts['view'], r.counts['purchase'], r.sessions, r.purchases];
    });
    expect(got).toEqual(want);
    console.log(
      `chaos: ${faults.length} faults, ${sent} events (${producer.failures} retried sends, longest stall ${producer.longestStallMs} ms), ${prober.outcomes.length} RPCs, ${prober.outcomes.filter((o) => o.code === 'UNAVAILABLE').length} UNAVAILABLE`,
    );
  } finally {
    features.close();
    await store.close();
    await busAfter.nc.close();
  }
});
