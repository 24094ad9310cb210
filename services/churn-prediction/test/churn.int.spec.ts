/**
 * churn-prediction as a process among the processes it needs (nats-server, ingest, feature), with the
 * faults an outside test found: a published model that outputs NaN (trained on 0 rows) must not wedge
 * the consumer nor store NaN, and health must say the service cannot do its job; with feature down or
 * hung, Predict serves stored scores and answers UNAVAILABLE for users it cannot score, within the
 * caller's deadline.
 */
import { churnV1, Headers, Streams } from '@aisle/contracts';
import { CHURN_FEATURES, ChurnClassifier, exportChurn } from '@aisle/ml';
import {
  AsyncJetStreamPublisher,
  createGrpcClient,
  createMetricsRegistry,
  eraseIndexedMessages,
  isGrpcError,
  memoryLogger,
  ModelRegistry,
  type Bus,
} from '@aisle/runtime';
import { alertPublisher } from '../src/churn.nats';
import { openStore, type Store, STORE_PORTS } from '@aisle/store';
import {
  eventually,
  freePort,
  healthCheck,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';

jest.setTimeout(120_000);

const SERVICE = 'aisle.churn.v1.ChurnService';
const users = ['u1', 'u2', 'u3', 'u4', 'u5'];

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let store: Store;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: AsyncJetStreamPublisher;
let ingest: ServiceProcess;
let feature: ServiceProcess;
let churnProcess: ServiceProcess;
let churn: ReturnType<typeof createGrpcClient<typeof churnV1.ChurnServiceService>>;
let address: string;

/** A churn model whose weights are given (no training): NaN standardization reproduces a 0-row fit. */
function churnModel(opts: { nan?: boolean }): Uint8Array {
  const c = new ChurnClassifier();
  if (opts.nan) c.mean.fill(NaN);
  c.w.fill(0.1);
  c.bias = -0.5;
  return exportChurn(c);
}

async function publishModel(version: string, onnx: Uint8Array): Promise<void> {
  const registry = await ModelRegistry.open(nc);
  await registry.publish(publisher, {
    tenant: 'default',
    name: 'churn',
    version,
    onnx,
    sidecar: { features: CHURN_FEATURES, threshold: 0.5, horizonDays: 7 },
    meta: {},
  });
}

async function publishEvents(tag: string): Promise<void> {
  const js = jetstream(nc);
  const h = headers();
  h.set(Headers.contentType, 'application/json');
  for (const [k, u] of users.entries()) {
    const e = {
      event_id: `${tag}-${u}`,
      type: 'view',
      user_id: u,
      item_id: `i${k}`,
      occurred_at: new Date(Date.now() - (k + 1) * 3_600_000).toISOString(),
    };
    await js.publish('aisle.clickstream.v1.view', JSON.stringify(e), { headers: h });
  }
}

async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    return `${err.code} ${err.details}`;
  }
}

async function caughtUp(): Promise<boolean> {
  const c = await jsm.consumers.info(Streams.FEATURES.name, 'churn');
  return c.num_pending === 0 && c.num_ack_pending === 0;
}

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url };
  [ingest, feature] = await Promise.all([
    startServiceProcess('ingest', env),
    startServiceProcess('feature', { ...env, AISLE_GRPC_PORT: String(await freePort()) }),
  ]);
  churnProcess = await startServiceProcess('churn-prediction', {
    ...env,
    AISLE_FEATURE_ADDR: `127.0.0.1:${feature.grpcPort}`,
    AISLE_CHURN_RESCORE_INTERVAL: '1h',
  });
  address = `127.0.0.1:${churnProcess.grpcPort}`;
  churn = createGrpcClient(churnV1.ChurnServiceService, address, { deadlineMs: 5000 });
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  publisher = new AsyncJetStreamPublisher(nc);
  store = await openStore(storeFile.url, STORE_PORTS);
});

afterAll(async () => {
  churn?.close();
  publisher?.close();
  await nc?.close();
  await store?.close();
  feature?.kill('SIGCONT');
  await Promise.all([churnProcess?.stop(), ingest?.stop(), feature?.stop()]);
  await nats?.dispose();
  storeFile?.dispose();
});

test('a model that outputs NaN: nothing stored, the consumer keeps up, health NOT_SERVING; a good model heals it', async () => {
  expect(await healthCheck(address, SERVICE)).toBe('NOT_SERVING'); // no model yet
  const status = async () =>
    (await (await fetch(`http://127.0.0.1:${churnProcess.metricsPort}/status`)).json()) as {
      model: string | null;
      model_problem: string | null;
    };
  await publishModel('bad', churnModel({ nan: true }));
  // Loaded, or refused at load (a model that fails its check on a probe input is never activated).
  await eventually(
    async () =>
      (await status()).model === 'bad' ||
      churnProcess.logs.some((l) => l['level'] !== 'info' && JSON.stringify(l).includes('bad')),
    { what: 'the bad model to be loaded or refused' },
  );
  await publishEvents('a');
  await eventually(
    async () => (await jsm.streams.info(Streams.FEATURES.name)).state.messages >= users.length && (await caughtUp()),
    { what: 'churn consumer to handle every update' },
  );
  // Either way the service says it cannot score, and nothing is stored.
  if ((await status()).model === 'bad')
    expect((await status()).model_problem).toMatch(
      /^churn model bad produced \d+ risk\(s\) that are not probabilities/,
    );
  expect(await healthCheck(address, SERVICE)).toBe('NOT_SERVING');
  expect(await store.churnScores.getMany('default', users)).toEqual(new Map());
  const predict = await codeOf(churn.predict({ tenant: '', userIds: ['u1'] }));
  expect(predict).not.toMatch(/^13 /); // never INTERNAL
  if ((await status()).model === 'bad') expect(predict).toMatch(/^14 /); // UNAVAILABLE

  await publishModel('good', churnModel({}));
  await eventually(async () => (await healthCheck(address, SERVICE)) === 'SERVING', { what: 'the good model' });
  await eventually(async () => (await store.churnScores.getMany('default', users)).size === users.length, {
    what: 'every user scored',
  });
  for (const r of (await store.churnScores.getMany('default', users)).values()) {
    expect(r.modelVersion).toBe('good');
    expect(r.risk).toBeGreaterThanOrEqual(0);
    expect(r.risk).toBeLessThanOrEqual(1);
  }
});

test('a request naming another stored version is scored by it afresh, nothing stored; unknown or unusable versions are refused', async () => {
  // Stored, not activated: what an experiment arm pins.
  const c = new ChurnClassifier();
  c.w.fill(0.4);
  c.bias = 1;
  await (
    await ModelRegistry.open(nc)
  ).storeVersion({
    tenant: 'default',
    name: 'churn',
    version: 'pinned',
    onnx: exportChurn(c),
    sidecar: { features: CHURN_FEATURES, threshold: 0.5, horizonDays: 7 },
    meta: {},
  });
  const active = (await churn.predict({ tenant: '', userIds: ['u1'] })).scores[0];
  const pinned = (await churn.predict({ tenant: '', userIds: ['u1', 'nobody'], modelVersion: 'pinned' })).scores;
  expect(pinned.map((s) => [s.userId, s.known, s.modelVersion])).toEqual([
    ['u1', true, 'pinned'],
    ['nobody', false, 'pinned'],
  ]);
  expect(pinned[0]?.risk).not.toBeCloseTo(active?.risk ?? 0, 3);
  // The stored score stays the active model's.
  expect((await store.churnScores.getMany('default', ['u1'])).get('u1')?.modelVersion).toBe('good');
  expect((await churn.predict({ tenant: '', userIds: ['u1'], modelVersion: 'good' })).scores[0]).toEqual(active);
  expect(await codeOf(churn.predict({ tenant: '', userIds: ['u1'], modelVersion: 'v404' }))).toBe(
    "5 the model registry has no churn version 'v404' for tenant 'default'",
  );
  // `bad` outputs NaN: its probe refuses it.
  expect(await codeOf(churn.predict({ tenant: '', userIds: ['u1'], modelVersion: 'bad' }))).toMatch(
    /^9 churn bad cannot be served: /,
  );
  const status = (await (await fetch(`http://127.0.0.1:${churnProcess.metricsPort}/status`)).json()) as {
    tenants: Record<string, { pinned: string[] }>;
  };
  expect(status.tenants['default']?.pinned).toEqual(['pinned']);
});

test('feature hung or down: stored scores are served, users without one get UNAVAILABLE within the deadline', async () => {
  const stored = (await churn.predict({ tenant: '', userIds: ['u1', 'u2'] })).scores;
  expect(stored.map((s) => [s.userId, s.known, s.modelVersion])).toEqual([
    ['u1', true, 'good'],
    ['u2', true, 'good'],
  ]);

  feature.kill('SIGSTOP');
  try {
    // UNAVAILABLE (not DEADLINE_EXCEEDED, which the client reports when its deadline passes first): the
    // answer came within the caller's 600 ms although feature never answers.
    expect(await codeOf(churn.predict({ tenant: '', userIds: ['u1', 'nobody'] }, { deadlineMs: 600 }))).toMatch(
      /^14 .*feature service is unavailable/,
    );
    expect((await churn.predict({ tenant: '', userIds: ['u1'] }, { deadlineMs: 600 })).scores[0]?.risk).toBe(
      stored[0]?.risk,
    );
  } finally {
    feature.kill('SIGCONT');
  }

  feature.kill('SIGKILL');
  await feature.exited;
  expect(await codeOf(churn.predict({ tenant: '', userIds: ['nobody'] }, { deadlineMs: 2000 }))).toMatch(
    /^14 .*feature service is unavailable/,
  );
  expect((await churn.predict({ tenant: '', userIds: ['u2'] })).scores[0]?.risk).toBe(stored[1]?.risk);
  // Serving stored scores is its job: it stays SERVING.
  expect(await healthCheck(address, SERVICE)).toBe('SERVING');
});

test("an alert's position is recorded in the message index, so forgetting its user erases it from CHURN", async () => {
  const sink = alertPublisher(
    { publisher } as unknown as Bus,
    'default',
    memoryLogger(),
    createMetricsRegistry('churn', { defaultMetrics: false }),
    (ps) => store.messages.record(ps),
  );
  await sink.alert({
    alertId: 'a1',
    userId: 'leaving-shopper',
    risk: 0.9,
    threshold: 0.5,
    band: 'high',
    factors: [],
    modelVersion: 'v1',
    scoredAt: Date.now(),
  });
  const before = (await jsm.streams.info(Streams.CHURN.name)).state.messages;
  expect(await eraseIndexedMessages(jsm, store.messages, 'default', 'leaving-shopper', [Streams.CHURN.name])).toBe(1);
  expect((await jsm.streams.info(Streams.CHURN.name)).state.messages).toBe(before - 1);
});
