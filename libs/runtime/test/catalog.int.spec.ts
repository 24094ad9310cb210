/** Issue #13: services materialize the catalog ingest publishes on ITEMS (replay, then updates). */
import { encodeItem, Streams, Subjects, type Item } from '@aisle/contracts';
import { startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { catalogSize, ensureStreams, followCatalog, jetStreamOf, memoryLogger, type JetStreamClient } from '../src';

let nats: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  const bus = await jetStreamOf(nc);
  js = bus.js;
  await ensureStreams(bus.jsm, [Streams.ITEMS]);
});
afterAll(async () => {
  await nc.close();
  await nats.dispose();
});

const item = (tenant: string, itemId: string, updatedAt: number, title = itemId): Item => ({
  tenant,
  itemId,
  title,
  description: '',
  category: 'C',
  brand: '',
  price: 1,
  inStock: true,
  attributes: {},
  updatedAt,
  ingestedAt: updatedAt,
});
const publish = (i: Item) => js.publish(Subjects.item(i.tenant, i.itemId), encodeItem(i));

test('a follower started after the catalog was written gets all of it, the latest version of each item; then updates', async () => {
  // Ids a subject token could not hold as they are; `shop.eu` is another tenant, not a part of `shop`.
  for (const i of [item('shop', 'a.b', 1), item('shop', 'x y*>', 1), item('shop', 'a.b', 2, 'a.b v2')])
    await publish(i);
  await publish(item('shop.eu', 'eu-1', 1));
  await js.publish(Subjects.item('shop', 'garbage'), new Uint8Array([0xff, 0xff, 0xff]));
  await js.publish(Subjects.item('shop', 'elsewhere'), encodeItem(item('other', 'elsewhere', 1)));
  expect(await catalogSize(js, 'shop')).toBe(4);

  const registry = new Registry();
  const seen = new Map<string, Item>();
  const feed = await followCatalog(js, 'shop', {
    logger: memoryLogger(),
    registry,
    batchSize: 2,
    onItems: (items) => items.forEach((i) => seen.set(i.itemId, i)),
  });
  try {
    // Resolved once replayed: everything is there already.
    expect([...seen.keys()].sort()).toEqual(['a.b', 'x y*>']);
    expect(seen.get('a.b')?.title).toBe('a.b v2');
    expect((await registry.getSingleMetric('aisle_catalog_undecodable_total')?.get())?.values[0]?.value).toBe(2);

    await publish(item('shop', 'new', 5));
    const deadline = Date.now() + 5000;
    while (!seen.has('new') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seen.get('new')?.updatedAt).toBe(5);
    expect(seen.has('eu-1')).toBe(false);
  } finally {
    await feed.stop();
  }
});

test('once: reads a catalog and stops; an empty one resolves at once', async () => {
  const got: string[] = [];
  const feed = await followCatalog(js, 'shop.eu', {
    logger: memoryLogger(),
    once: true,
    onItems: (items) => void got.push(...items.map((i) => i.itemId)),
  });
  expect(got).toEqual(['eu-1']);
  expect(feed.received).toBe(1);
  const empty = await followCatalog(js, 'nobody', { logger: memoryLogger(), once: true, onItems: () => {} });
  expect(empty.received).toBe(0);
});
