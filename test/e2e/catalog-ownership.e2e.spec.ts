/**
 * Issue #13, item 5: each service owns its data. Ingest alone writes the `items` table and publishes the
 * accepted catalog on stream ITEMS; feature, ranking and embedding-inference materialize it. Here they run
 * on a store of their own (another SQLite file), so they could not read ingest's table even by mistake:
 * started after the catalog was written, they hold all of it at once, and an upsert through ingest reaches
 * each of their views within seconds, while their store's `items` table stays empty.
 */
import { featureV1, rankingV1, Subjects } from '@aisle/contracts';
import {
  catalogSize,
  createGrpcClient,
  jetStreamOf,
  startServiceInProcess,
  type InProcessService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import { eventually, startNatsServer, tempSqliteUrl, type NatsServerHandle } from '@aisle/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startEmbedding } from '../../services/embedding-inference/src/app';
import { loadEmbeddingConfig } from '../../services/embedding-inference/src/config';
import { startFeature } from '../../services/feature/src/app';
import { loadFeatureConfig } from '../../services/feature/src/config';
import { startIngest } from '../../services/ingest/src/app';
import { loadIngestConfig } from '../../services/ingest/src/config';
import { startRanking } from '../../services/ranking/src/app';
import { loadRankingConfig } from '../../services/ranking/src/config';

jest.setTimeout(120_000);

let nats: NatsServerHandle;
let nc: NatsConnection;
const ingestStore = tempSqliteUrl();
const servicesStore = tempSqliteUrl();
const services: InProcessService[] = [];

const env = (storeUrl: string) => ({
  AISLE_NATS_URL: nats.url,
  AISLE_STORE_URL: storeUrl,
  AISLE_GRPC_HOST: '127.0.0.1',
  AISLE_GRPC_PORT: '0',
  AISLE_METRICS_PORT: '0',
  AISLE_LOG_LEVEL: 'error',
});

async function start<C>(
  name: string,
  config: C,
  fn: (b: Parameters<typeof startIngest>[0], c: C) => ReturnType<typeof startIngest>,
): Promise<InProcessService> {
  const s = await startServiceInProcess(name, config as never, fn as never);
  services.push(s);
  return s;
}

const upsert = (itemId: string, title: string, category: string, updatedAt: number) =>
  nc.publish(
    Subjects.catalog('default'),
    JSON.stringify({ item_id: itemId, title, category, price: 10, updated_at: new Date(updatedAt).toISOString() }),
  );

const catalogItemsOf = async (s: InProcessService): Promise<number | undefined> => {
  const status = (await (await fetch(`http://127.0.0.1:${s.base.metricsPort}/status`)).json()) as {
    tenants: Record<string, { catalogItems: number }>;
  };
  return status.tenants['default']?.catalogItems;
};

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const s of services.reverse()) await s.stop();
  await nc?.close();
  await nats?.dispose();
  ingestStore.dispose();
  servicesStore.dispose();
});

test("services started after the catalog was written materialize all of it, and follow ingest's updates, without the items table", async () => {
  await start('ingest', loadIngestConfig(env(ingestStore.url)), startIngest);
  const t0 = Date.now() - 60_000;
  upsert('lantern', 'Lantern', 'Home > Lighting', t0);
  upsert('kettle', 'Kettle', 'Kitchen', t0);
  upsert('tent', 'Tent', 'Outdoor', t0);
  // A late re-send of an older version: it must not replace the newer one on ITEMS.
  upsert('kettle', 'Old kettle', 'Kitchen', t0 - 1000);
  const { js } = await jetStreamOf(nc);
  await eventually(async () => (await catalogSize(js, 'default')) === 3, { what: 'the catalog accepted by ingest' });

  const servicesEnv = env(servicesStore.url);
  const feature = await start('feature', loadFeatureConfig(servicesEnv), startFeature);
  const embedding = await start('embedding-inference', loadEmbeddingConfig(servicesEnv), startEmbedding);
  const ranking = await start(
    'ranking',
    loadRankingConfig({
      ...servicesEnv,
      AISLE_FEATURE_ADDR: `127.0.0.1:${feature.grpcPort}`,
      AISLE_EMBEDDING_ADDR: `127.0.0.1:${embedding.grpcPort}`,
    }),
    startRanking,
  );
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, {
    deadlineMs: 5000,
  });
  const rankingClient = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${ranking.grpcPort}`, {
    deadlineMs: 5000,
  });
  const itemView = async (itemId: string) =>
    (await features.getItemFeatures({ tenant: '', itemIds: [itemId], coVisitLimit: 0 })).items[0];
  const search = async (query: string) =>
    (
      await rankingClient.search({ tenant: '', query, userId: '', limit: 5, explain: false, filters: undefined })
    ).items.map((i) => i.itemId);
  try {
    // Started after the catalog was written: each has all of it as soon as it is up.
    expect(await catalogItemsOf(ranking)).toBe(3);
    expect(await catalogItemsOf(embedding)).toBe(3);
    expect(await itemView('kettle')).toMatchObject({ inCatalog: true, title: 'Kettle', category: 'Kitchen' });
    expect(await search('kettle')).toEqual(['kettle']);

    // An update and a new item through ingest reach every view within seconds.
    upsert('lantern', 'Brass lantern', 'Home > Lighting', t0 + 1000);
    upsert('blanket', 'Wool blanket', 'Home > Bedding', t0 + 1000);
    await eventually(async () => (await search('brass')).includes('lantern'), {
      what: "the update in ranking's catalog",
      timeoutMs: 10_000,
    });
    await eventually(async () => (await catalogItemsOf(ranking)) === 4, {
      what: 'ranking: new item',
      timeoutMs: 10_000,
    });
    await eventually(async () => (await catalogItemsOf(embedding)) === 4, {
      what: 'embedding-inference: new item',
      timeoutMs: 10_000,
    });
    await eventually(async () => (await itemView('lantern'))?.title === 'Brass lantern', {
      what: "the update in feature's catalog",
      timeoutMs: 10_000,
    });
    expect(await itemView('blanket')).toMatchObject({ inCatalog: true, category: 'Home > Bedding' });
  } finally {
    features.close();
    rankingClient.close();
  }
  // Only ingest's store holds items; the others' store never had a row written to its items table.
  const inspect = async (url: string) => {
    const store = await openStore(url, ['items']);
    try {
      return await store.items.count();
    } finally {
      await store.close();
    }
  };
  expect(await inspect(ingestStore.url)).toBe(4);
  expect(await inspect(servicesStore.url)).toBe(0);
});
