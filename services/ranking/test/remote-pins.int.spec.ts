/**
 * An experiment arm that pins a version of a kind another service serves (sasrec, served by
 * embedding-inference): ranking names the arm's version on the arm's retrieval calls, embedding-inference
 * loads it from the model registry on first use and answers with it, and the arm's responses and served
 * events record it, while the production arm is answered by the active version. Real processes: NATS,
 * embedding-inference, ranking (the feature service is not running: anonymous sessions need no user, and
 * co-visitation degrades).
 */
import { experimentV1, rankingV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { assignArm, assignmentPlan, normalizeExperiment, unitOf } from '@aisle/experiments';
import { fromEvents, initBackend } from '@aisle/ml';
import {
  AsyncJetStreamPublisher,
  createGrpcClient,
  ensureStreams,
  ExperimentBucket,
  jetStreamOf,
  ModelRegistry,
} from '@aisle/runtime';
import {
  acceptedItem,
  eventually,
  freePort,
  publishAcceptedCatalog,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { publishTinySasrec } from '../../embedding-inference/test/models.fixture';

jest.setTimeout(180_000);

const shop = generateShop({ seed: 5, users: 100, items: 60, days: 20 });
const sequences = fromEvents('shop', shop.events);
let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let nc: NatsConnection;
let publisher: AsyncJetStreamPublisher;
let embedding: ServiceProcess;
let ranking: ServiceProcess;
let client: ReturnType<typeof createGrpcClient<typeof rankingV1.RankingServiceService>>;
let servedSub: Subscription;
const served: rankingV1.Served[] = [];

const walk = Array.from(sequences.sequences[0]!.subarray(0, 3), (i) => sequences.itemIds[i]!);
const anonymous = (sessionId: string) =>
  client.recommend(rankingV1.RecommendRequest.fromPartial({ userId: '', limit: 5, sessionItemIds: walk, sessionId }));

beforeAll(async () => {
  await initBackend({});
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  nc = await connect({ servers: nats.url });
  await publishAcceptedCatalog(
    nc,
    shop.items.map((i) => acceptedItem(i)),
  );
  const { jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [Streams.MODELS]);
  publisher = new AsyncJetStreamPublisher(nc);
  const registry = await ModelRegistry.open(nc);
  // v1 first, then v2: v2 is the active version when the services start.
  await publishTinySasrec(registry, publisher, sequences, 'v1', 1);
  await publishTinySasrec(registry, publisher, sequences, 'v2', 2);
  servedSub = nc.subscribe(Subjects.rankingServed, {
    callback: (_err, msg) => {
      served.push(rankingV1.Served.decode(msg.data));
    },
  });
  embedding = await startServiceProcess('embedding-inference', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
  });
  ranking = await startServiceProcess('ranking', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_FEATURE_ADDR: `127.0.0.1:${await freePort()}`,
    AISLE_CHURN_ADDR: `127.0.0.1:${await freePort()}`,
    AISLE_EMBEDDING_ADDR: `127.0.0.1:${embedding.grpcPort}`,
  });
  client = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${ranking.grpcPort}`, { deadlineMs: 5000 });
});

afterAll(async () => {
  client?.close();
  servedSub?.unsubscribe();
  publisher?.close();
  await nc?.close();
  await ranking?.stop();
  await embedding?.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

test('an arm pinning an older sasrec version is answered by it; the production arm by the active one', async () => {
  await eventually(async () => (await anonymous('warm-up')).modelVersion.includes('sasrec:v2'), {
    what: 'ranking retrieving with the active sasrec v2',
    timeoutMs: 60_000,
  });
  const e = normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      tenant: 'default',
      id: 'sasrec-pin',
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design: experimentV1.Design.DESIGN_AB,
      arms: [{ name: 'active' }, { name: 'pinned', models: { sasrec: 'v1' } }],
    }),
    Date.now() - 1000,
  );
  await (await ExperimentBucket.open(nc)).create(e);
  const sessionIn = (arm: string) => {
    let i = 0;
    while (assignArm(assignmentPlan(e), unitOf('', `visit-${i}`)) !== arm) i++;
    return `visit-${i}`;
  };
  // Ranking asks embedding-inference for v1 as soon as the experiment is defined, so that it loads it ahead.
  await eventually(
    () =>
      ranking.logs.some(
        (l) => l['msg'] === 'experiment model ready on its service' && l['model'] === 'sasrec' && l['version'] === 'v1',
      ),
    { what: 'ranking warmed the pinned version on embedding-inference', timeoutMs: 60_000 },
  );
  const pinned = await eventually(
    async () => {
      const r = await anonymous(sessionIn('pinned'));
      return r.modelVersion.includes('sasrec:v1') ? r : undefined;
    },
    { what: 'the pinned arm answered by sasrec v1', timeoutMs: 60_000 },
  );
  expect(pinned.modelVersion).not.toMatch(/sasrec:v2/);
  expect(pinned.items.length).toBeGreaterThan(0);
  const active = await anonymous(sessionIn('active'));
  expect(active.modelVersion).toMatch(/sasrec:v2/);
  expect(active.modelVersion).not.toMatch(/sasrec:v1/);

  // The served events record the arm and the version that answered it.
  const event = (requestId: string) => served.find((s) => s.requestId === requestId);
  await eventually(() => event(pinned.requestId) !== undefined && event(active.requestId) !== undefined, {
    what: 'both responses published on aisle.ranking.v1.served',
  });
  expect(event(pinned.requestId)).toMatchObject({
    modelVersion: pinned.modelVersion,
    experiment: { experimentId: 'sasrec-pin', arm: 'pinned' },
  });
  expect(event(active.requestId)).toMatchObject({
    modelVersion: active.modelVersion,
    experiment: { experimentId: 'sasrec-pin', arm: 'active' },
  });
  const status = (await (await fetch(`http://127.0.0.1:${embedding.metricsPort}/status`)).json()) as {
    tenants: Record<string, { pinned: Record<string, string[]> }>;
  };
  expect(status.tenants['default']?.pinned['sasrec']).toEqual(['v1']);
});
