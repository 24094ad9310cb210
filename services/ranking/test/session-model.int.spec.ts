/**
 * ranking as a process: the session model the trainer publishes (a registry artifact, sidecar only) is
 * hot-loaded through the model slot and orders Recommend for anonymous sessions (session_item_ids, no
 * user); a newer version replaces it without a restart. Feature and embedding are not running: an
 * anonymous session needs neither.
 */
import { experimentV1, rankingV1 } from '@aisle/contracts';
import { assignArm, assignmentPlan, normalizeExperiment, unitOf } from '@aisle/experiments';
import { DEFAULT_SESSION_MODEL, internSessions, sessionArtifactSidecar } from '@aisle/ml';
import { AsyncJetStreamPublisher, createGrpcClient, ExperimentBucket, ModelRegistry } from '@aisle/runtime';
import {
  eventually,
  freePort,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
  publishAcceptedCatalog,
} from '@aisle/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';

jest.setTimeout(120_000);

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let nc: NatsConnection;
let publisher: AsyncJetStreamPublisher;
let ranking: ServiceProcess;
let client: ReturnType<typeof createGrpcClient<typeof rankingV1.RankingServiceService>>;

const ITEMS = Array.from({ length: 40 }, (_, i) => `sku-${i}`);

/** Sessions that walk `order` (item a is followed by `next(a)`), 300 of them. */
function sessionsWalking(next: (i: number) => number): string[][] {
  return Array.from({ length: 300 }, (_, s) => {
    const out = [s % ITEMS.length];
    while (out.length < 4) out.push(next(out[out.length - 1] as number));
    return out.map((i) => ITEMS[i] as string);
  });
}

async function publishSessionModel(version: string, sessions: string[][]): Promise<void> {
  const registry = await ModelRegistry.open(nc);
  const { itemIds, sessions: interned } = internSessions(sessions);
  await registry.publish(publisher, {
    tenant: 'default',
    name: 'session',
    version,
    onnx: new Uint8Array(0),
    sidecar: sessionArtifactSidecar({ spec: DEFAULT_SESSION_MODEL, itemIds, sessions: interned }),
    meta: {},
  });
}

const anonymous = (sessionItemIds: string[], sessionId?: string) =>
  client.recommend({
    tenant: '',
    userId: '',
    limit: 5,
    filters: undefined,
    context: {},
    explain: false,
    sessionItemIds,
    ...(sessionId ? { sessionId } : {}),
  });

// The model may put a session item first (a re-view is a valid next click); what follows is the walk.
const fresh = (r: rankingV1.RecommendResponse, session: string[]) =>
  r.items.map((i) => i.itemId).filter((id) => !session.includes(id));

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  nc = await connect({ servers: nats.url });
  await publishAcceptedCatalog(
    nc,
    ITEMS.map((itemId, i) => ({
      tenant: 'default',
      itemId,
      title: `item ${i}`,
      description: '',
      category: `c${i}`,
      brand: 'b',
      price: 10,
      inStock: true,
      attributes: {},
      updatedAt: 1,
      ingestedAt: 1,
    })),
  );
  publisher = new AsyncJetStreamPublisher(nc);
  const [featurePort, embeddingPort] = [await freePort(), await freePort()];
  ranking = await startServiceProcess('ranking', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_FEATURE_ADDR: `127.0.0.1:${featurePort}`,
    AISLE_EMBEDDING_ADDR: `127.0.0.1:${embeddingPort}`,
  });
  client = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${ranking.grpcPort}`, { deadlineMs: 5000 });
});

afterAll(async () => {
  client?.close();
  publisher?.close();
  await nc?.close();
  await ranking?.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

test('anonymous sessions are ordered by the published session model, hot-swapped on a new version', async () => {
  // Before any session model: served like any user-less request, without a session version.
  expect((await anonymous(['sku-3'])).modelVersion).not.toMatch(/session:/);

  await publishSessionModel(
    'v1',
    sessionsWalking((i) => (i + 1) % ITEMS.length),
  );
  await eventually(async () => (await anonymous(['sku-3'])).modelVersion.includes('session:v1'), {
    what: 'session model v1 serving',
  });
  const first = await anonymous(['sku-2', 'sku-3']);
  expect(fresh(first, ['sku-2', 'sku-3'])[0]).toBe('sku-4');
  expect(first.degraded).toBe(false);

  // Version 2 learned that shoppers walk backwards.
  await publishSessionModel(
    'v2',
    sessionsWalking((i) => (i + ITEMS.length - 1) % ITEMS.length),
  );
  await eventually(async () => (await anonymous(['sku-3'])).modelVersion.includes('session:v2'), {
    what: 'session model v2 serving',
  });
  expect(fresh(await anonymous(['sku-4', 'sku-3']), ['sku-4', 'sku-3'])[0]).toBe('sku-2');
  const status = (await (await fetch(`http://127.0.0.1:${ranking.metricsPort}/status`)).json()) as {
    models: Array<{ tenant: string; model: string; version: string }>;
  };
  expect(status.models).toContainEqual(expect.objectContaining({ model: 'session', version: 'v2' }));
});

test('a session model artifact that is not one is refused; the serving version stays', async () => {
  const registry = await ModelRegistry.open(nc);
  await registry.publish(publisher, {
    tenant: 'default',
    name: 'session',
    version: 'v3-broken',
    onnx: new Uint8Array(0),
    sidecar: { format: 'aisle-session-model/1', artifact: 'AAAA' },
    meta: {},
  });
  await eventually(async () => ranking.logs.some((l) => JSON.stringify(l).includes('v3-broken')), {
    what: 'the broken version to be looked at',
  });
  expect((await anonymous(['sku-3'])).modelVersion).toMatch(/session:v2/);
});

test('an experiment arm serves its pinned session model; a pin that cannot load falls back to production', async () => {
  // Production serves v2 (walks backwards); arm `pinned` keeps v1 (forwards); `broken` pins the refused v3.
  const e = normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      tenant: 'default',
      id: 'session-pin',
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design: experimentV1.Design.DESIGN_AB,
      arms: [
        { name: 'active' },
        { name: 'pinned', models: { session: 'v1' } },
        { name: 'broken', models: { session: 'v3-broken' } },
      ],
    }),
    Date.now() - 1000,
  );
  await (await ExperimentBucket.open(nc)).create(e);
  await eventually(
    async () => {
      const status = (await (await fetch(`http://127.0.0.1:${ranking.metricsPort}/status`)).json()) as {
        tenants: Record<string, { experimentModels: Array<{ model: string; version: string }> }>;
      };
      return status.tenants['default']?.experimentModels.some((p) => p.model === 'session' && p.version === 'v1');
    },
    { what: 'ranking loaded the pinned session model' },
  );
  const sessionIn = (arm: string) => {
    let i = 0;
    while (assignArm(assignmentPlan(e), unitOf('', `visit-${i}`)) !== arm) i++;
    return `visit-${i}`;
  };
  const walk = ['sku-2', 'sku-3'];
  const pinned = await anonymous(walk, sessionIn('pinned'));
  expect(pinned.modelVersion).toMatch(/session:v1/);
  expect(fresh(pinned, walk)[0]).toBe('sku-4');
  const active = await anonymous(['sku-4', 'sku-3'], sessionIn('active'));
  expect(active.modelVersion).toMatch(/session:v2/);
  expect(fresh(active, ['sku-4', 'sku-3'])[0]).toBe('sku-2');
  // v3-broken failed its checks: that arm's requests get production's ranking (the guardrails count them).
  expect((await anonymous(walk, sessionIn('broken'))).modelVersion).toMatch(/session:v2/);
});
