/**
 * The console's HTTP API against a real nats-server, outside local development: login and trusted-proxy
 * callers, tenant isolation of dead letters and of every tenant-scoped route, replay to the producer
 * subjects, promote/roll back through the model registry, and experiments through the real experiment
 * service (who may see and who may stop or promote). (Pages in a real browser: test/e2e.)
 */
import { ContentTypes, experimentV1, Headers, modelsV1, rankingV1, Streams, Subjects } from '@aisle/contracts';
import {
  AsyncJetStreamPublisher,
  ConfigError,
  createGrpcClient,
  ModelRegistry,
  startServiceInProcess,
  type InProcessService,
} from '@aisle/runtime';
import {
  eventually,
  startNatsServer,
  startServiceProcess,
  tempDir,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashPassword } from '../src/access';
import type {
  DeadLetterDetail,
  DeadLetterPage,
  ExperimentActionResult,
  ExperimentsView,
  ExperimentView,
  ModelsView,
  ReplayResult,
  SessionInfo,
} from '../src/api';
import { startConsole } from '../src/app';
import { loadConsoleConfig } from '../src/config';

jest.setTimeout(60_000);

let nats: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: ReturnType<typeof tempDir>;
const consoles: InProcessService[] = [];

async function publishDeadLetter(payload: string, reason: string): Promise<number> {
  const h = headers();
  h.set(Headers.rejectReason, reason);
  h.set(Headers.originalSubject, Subjects.clickstream('view'));
  h.set(Headers.rejectedBy, 'ingest');
  h.set(Headers.contentType, ContentTypes.json);
  const ack = await jetstream(nc).publish(Subjects.dlq('clickstream'), new TextEncoder().encode(payload), {
    headers: h,
  });
  return ack.seq;
}

function client(base: string, init: { cookie?: string; headers?: Record<string, string> } = {}) {
  const call = async (path: string, opts: { method?: string; body?: unknown } = {}) => {
    const res = await fetch(new URL(path, base), {
      method: opts.method ?? 'GET',
      headers: {
        ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...(init.cookie ? { Cookie: init.cookie } : {}),
        ...init.headers,
      },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
    const body: unknown = await res.json().catch(() => null);
    return { status: res.status, body, res };
  };
  return call;
}

let seqA: number;
let seqB: number;
let seqGarbage: number;
let accessFile: string;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  dir = tempDir('aisle-console-');
  accessFile = join(dir.path, 'access.json');
  writeFileSync(
    accessFile,
    JSON.stringify({
      users: [
        { name: 'alice', passwordHash: hashPassword('alice-password') },
        { name: 'olga', passwordHash: hashPassword('olga-password') },
      ],
      grants: [
        { subject: 'user:alice', tenants: ['shop-a'], role: 'viewer' },
        { subject: 'user:olga', tenants: ['*'], role: 'operator' },
        { subject: 'group:shop-b-team', tenants: ['shop-b'], role: 'operator' },
      ],
    }),
  );
  for (const s of [Streams.CLICKSTREAM, Streams.DLQ])
    await jsm.streams.add({ name: s.name, subjects: [...s.subjects] }).catch(() => undefined);
  seqA = await publishDeadLetter('{"tenant":"shop-a","type":"view","item_id":"i1"}', 'user_id: required');
  seqB = await publishDeadLetter('{"tenant":"shop-b","type":"view","item_id":"i2"}', 'user_id: required');
  seqGarbage = await publishDeadLetter('x\r\nnot json', 'payload: invalid JSON (Unexpected token x)');
});

afterAll(async () => {
  for (const c of consoles) await c.stop();
  await nc?.close();
  await nats?.dispose();
  dir?.dispose();
});

async function start(env: Record<string, string>): Promise<string> {
  const config = loadConsoleConfig({
    AISLE_NATS_URL: nats.url,
    AISLE_GRPC_PORT: '0',
    AISLE_METRICS_PORT: '-1',
    AISLE_CONSOLE_HTTP_PORT: '0',
    AISLE_TENANTS: 'shop-a,shop-b',
    AISLE_CONSOLE_SAMPLE_INTERVAL: '200ms',
    AISLE_CONSOLE_CALL_DEADLINE: '300ms',
    AISLE_LOG_LEVEL: 'info',
    ...env,
  });
  let ready: Record<string, unknown> = {};
  const svc = await startServiceInProcess('console', config, startConsole, {
    logSink: (line) => {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec['msg'] === 'ready') ready = rec;
    },
  });
  consoles.push(svc);
  return String(ready['url']);
}

test('refuses an open console off loopback and half-configured auth, naming the variables', () => {
  expect(() => loadConsoleConfig({ AISLE_CONSOLE_HTTP_HOST: '0.0.0.0' })).toThrow(ConfigError);
  expect(() => loadConsoleConfig({ AISLE_CONSOLE_HTTP_HOST: '0.0.0.0' })).toThrow(/AISLE_CONSOLE_AUTH/);
  expect(() => loadConsoleConfig({ AISLE_CONSOLE_AUTH: 'login', AISLE_CONSOLE_ACCESS_FILE: 'x' })).toThrow(
    /AISLE_CONSOLE_SESSION_SECRET/,
  );
  expect(() => loadConsoleConfig({ AISLE_CONSOLE_AUTH: 'proxy', AISLE_CONSOLE_ACCESS_FILE: 'x' })).toThrow(
    /AISLE_CONSOLE_TRUSTED_PROXIES/,
  );
});

async function loginAt(base: string, user: string, password: string): Promise<string> {
  const r = await client(base)('/api/login', { method: 'POST', body: { user, password } });
  expect(r.status).toBe(200);
  return (r.res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
}

const LOGIN = {
  AISLE_CONSOLE_AUTH: 'login',
  AISLE_CONSOLE_HTTP_HOST: '127.0.0.1',
  AISLE_CONSOLE_SESSION_SECRET: 'a-test-secret-that-is-long-enough-0123456789',
  AISLE_CONSOLE_SECURE_COOKIES: 'false',
};

describe('login', () => {
  let base: string;
  beforeAll(async () => {
    base = await start({ ...LOGIN, AISLE_CONSOLE_ACCESS_FILE: accessFile });
  });

  const login = (user: string, password: string) => loginAt(base, user, password);

  test('answers 401 without a session and to a wrong password; the page itself still loads', async () => {
    const page = await fetch(new URL('/dead-letters', base));
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect((await client(base)('/api/session')).status).toBe(401);
    expect((await client(base)('/api/dead-letters?tenant=shop-a')).status).toBe(401);
    expect(
      (await client(base)('/api/login', { method: 'POST', body: { user: 'alice', password: 'nope' } })).status,
    ).toBe(401);
    expect(
      (
        await client(base)('/api/login', { method: 'POST', body: { user: 'alice', password: 'alice-password' } })
      ).res.headers.get('set-cookie'),
    ).toMatch(/HttpOnly; SameSite=Strict/);
  });

  test('a viewer of shop-a sees only shop-a, never input of unknown tenant, and may not replay', async () => {
    const call = client(base, { cookie: await login('alice', 'alice-password') });
    const session = (await call('/api/session')).body as SessionInfo;
    expect(session).toMatchObject({ user: 'alice', role: 'viewer', tenants: ['shop-a'] });
    const page = await eventually(
      async () => {
        const p = (await call('/api/dead-letters?tenant=shop-a')).body as DeadLetterPage;
        return p.total > 0 ? p : undefined;
      },
      { what: 'dead letters indexed' },
    );
    expect(page.items.map((i) => i.seq)).toEqual([seqA]);
    for (const path of [
      '/api/dead-letters?tenant=shop-b',
      '/api/overview?tenant=shop-b',
      '/api/models?tenant=shop-b',
      '/api/shopper?tenant=shop-b&user=u1',
      '/api/search?tenant=shop-b&q=soap',
      '/api/experiments?tenant=shop-b',
      '/api/experiments/x?tenant=shop-b',
    ])
      expect([path, (await call(path)).status]).toEqual([path, 403]);
    expect((await call(`/api/dead-letters/${seqB}?tenant=shop-a`)).status).toBe(404);
    expect((await call(`/api/dead-letters/${seqGarbage}?tenant=shop-a`)).status).toBe(404);
    expect((await call(`/api/dead-letters/${seqA}?tenant=shop-a`)).status).toBe(200);
    expect(
      (await call('/api/dead-letters/replay', { method: 'POST', body: { tenant: 'shop-a', seqs: [seqA] } })).status,
    ).toBe(403);
    expect((await call('/api/overview?tenant=nowhere')).status).toBe(404);
  });

  test('refuses cross-origin writes', async () => {
    const call = client(base, {
      cookie: await login('olga', 'olga-password'),
      headers: { Origin: 'http://evil.example' },
    });
    expect(
      (await call('/api/dead-letters/replay', { method: 'POST', body: { tenant: 'shop-a', seqs: [seqA] } })).status,
    ).toBe(403);
  });

  test('an operator replays a dead letter, unchanged and corrected, to the subject its producer used', async () => {
    const call = client(base, { cookie: await login('olga', 'olga-password') });
    const detail = (await call(`/api/dead-letters/${seqGarbage}?tenant=shop-a`)).body as DeadLetterDetail;
    expect(detail).toMatchObject({ tenant: null, text: 'x\r\nnot json', reasonKind: 'payload: invalid JSON' });
    expect(Buffer.from(detail.hex, 'hex').toString()).toBe('x\r\nnot json');
    const fixed = '{"tenant":"shop-a","type":"view","item_id":"i1","user_id":"u1","event_id":"e1"}';
    const r = await call('/api/dead-letters/replay', {
      method: 'POST',
      body: { tenant: 'shop-a', seqs: [seqA, seqGarbage], edits: { [String(seqGarbage)]: fixed } },
    });
    expect(r.status).toBe(200);
    const { replayed } = r.body as ReplayResult;
    expect(replayed.map((x) => [x.seq, x.stream, x.subject, x.edited])).toEqual([
      [seqA, 'CLICKSTREAM', 'aisle.clickstream.v1.view', false],
      [seqGarbage, 'CLICKSTREAM', 'aisle.clickstream.v1.view', true],
    ]);
    const first = await jsm.streams.getMessage('CLICKSTREAM', { seq: replayed[0]!.streamSeq });
    expect(new TextDecoder().decode(first!.data)).toBe('{"tenant":"shop-a","type":"view","item_id":"i1"}');
    const second = await jsm.streams.getMessage('CLICKSTREAM', { seq: replayed[1]!.streamSeq });
    expect(new TextDecoder().decode(second!.data)).toBe(fixed);
    expect(second!.header.get(Headers.contentType)).toBe(ContentTypes.json);
    // shop-b's letter is not shop-a's to replay.
    expect(
      (await call('/api/dead-letters/replay', { method: 'POST', body: { tenant: 'shop-a', seqs: [seqB] } })).status,
    ).toBe(404);
  });

  test('promote and roll back go through the registry: pointer, announcement, version list', async () => {
    const registry = await ModelRegistry.open(nc);
    const publisher = new AsyncJetStreamPublisher(nc);
    await jsm.streams.add({ name: Streams.MODELS.name, subjects: [...Streams.MODELS.subjects] }).catch(() => undefined);
    const onnx = (n: number) => new Uint8Array([8, n, 1, 2, 3]);
    for (const [version, n] of [
      ['20260101T000000Z', 1],
      ['20260102T000000Z', 2],
    ] as const)
      await registry.publish(publisher, {
        tenant: 'shop-b',
        name: 'churn',
        version,
        onnx: onnx(n),
        sidecar: {},
        meta: {
          createdAt: new Date(version === '20260101T000000Z' ? 1_000 : 2_000),
          metrics: { heldout_roc_auc: 0.7 + n / 100 },
          curves: [{ name: 'loss', values: [0.9, 0.5, 0.4] }],
        },
      });
    const announced: string[] = [];
    const sub = registry.watch((m) => announced.push(`${m.tenant}/${m.name}/${m.version}`));
    const call = client(base, { cookie: await login('olga', 'olga-password') });
    const before = (await call('/api/models?tenant=shop-b')).body as ModelsView;
    const churn = before.kinds.find((k) => k.name === 'churn');
    expect(churn?.activeVersion).toBe('20260102T000000Z');
    expect(churn?.versions.map((v) => [v.version, v.active, v.metrics['heldout_roc_auc']])).toEqual([
      ['20260102T000000Z', true, 0.72],
      ['20260101T000000Z', false, 0.71],
    ]);
    expect(churn?.versions[0]?.curves).toEqual([{ name: 'loss', values: [0.9, 0.5, 0.4] }]);
    const rollBack = await call('/api/models/activate', {
      method: 'POST',
      body: { tenant: 'shop-b', name: 'churn', version: '20260101T000000Z' },
    });
    expect(rollBack.status).toBe(200);
    expect((await registry.activeMeta('shop-b', 'churn'))?.version).toBe('20260101T000000Z');
    await eventually(() => announced.includes('shop-b/churn/20260101T000000Z'), { what: 'announcement' });
    expect(
      (
        await call('/api/models/activate', {
          method: 'POST',
          body: { tenant: 'shop-b', name: 'churn', version: 'no-such-version' },
        })
      ).status,
    ).toBe(404);
    expect((await registry.activeMeta('shop-b', 'churn'))?.version).toBe('20260101T000000Z');
    sub.unsubscribe();
    publisher.close();
    expect(modelsV1.ModelPublished.toJSON((await registry.activeMeta('shop-b', 'churn'))!)).toMatchObject({
      version: '20260101T000000Z',
    });
  });
});

describe('experiments', () => {
  let experiment: ServiceProcess;
  let store: ReturnType<typeof tempSqliteUrl>;
  let base: string;
  let rpc: ReturnType<typeof createGrpcClient<typeof experimentV1.ExperimentServiceService>>;
  beforeAll(async () => {
    store = tempSqliteUrl();
    experiment = await startServiceProcess('experiment', {
      AISLE_NATS_URL: nats.url,
      AISLE_STORE_URL: store.url,
      AISLE_TENANTS: 'shop-a,shop-b',
      AISLE_METRICS_PORT: '-1',
    });
    rpc = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${experiment.grpcPort}`, {
      deadlineMs: 5000,
    });
    base = await start({
      ...LOGIN,
      AISLE_CONSOLE_ACCESS_FILE: accessFile,
      AISLE_EXPERIMENT_ADDR: `127.0.0.1:${experiment.grpcPort}`,
      // Promote rewrites a registry pointer and announces it: 300 ms (the other tests' deadline, which keeps
      // hung-service cases short) was missed under a loaded full suite, answering 503.
      AISLE_CONSOLE_CALL_DEADLINE: '10s',
    });
  });
  afterAll(async () => {
    rpc?.close();
    await experiment?.stop();
    store?.dispose();
  });

  test('a viewer sees the experiments of its tenant with their results; only an operator stops or promotes', async () => {
    // A candidate ranker stored (not active) for shop-a, pinned by the experiment's second arm.
    const registry = await ModelRegistry.open(nc);
    await registry.storeVersion({
      tenant: 'shop-a',
      name: 'ranker',
      version: 'candidate-1',
      onnx: new Uint8Array([8, 7, 1]),
      sidecar: {},
      meta: { createdAt: new Date(3_000) },
    });
    await rpc.create({
      experiment: experimentV1.Experiment.fromPartial({
        tenant: 'shop-a',
        id: 'ranker-ab',
        surface: rankingV1.Surface.SURFACE_RECOMMEND,
        design: experimentV1.Design.DESIGN_AB,
        arms: [
          { name: 'control', trafficShare: 0.5 },
          { name: 'candidate', trafficShare: 0.5, models: { ranker: 'candidate-1' } },
        ],
      }),
    });
    const viewer = client(base, { cookie: await loginAt(base, 'alice', 'alice-password') });
    const list = (await viewer('/api/experiments?tenant=shop-a')).body as ExperimentsView;
    expect(list.experiments.map((e) => [e.id, e.state, e.design, e.surface, e.primaryMetric])).toEqual([
      ['ranker-ab', 'running', 'ab', 'recommend', 'ctr'],
    ]);
    const one = (await viewer('/api/experiments/ranker-ab?tenant=shop-a')).body as ExperimentView;
    const { result } = await rpc.getResults({ tenant: 'shop-a', id: 'ranker-ab' });
    expect(one.experiment.arms.map((a) => [a.name, a.models])).toEqual([
      ['control', {}],
      ['candidate', { ranker: 'candidate-1' }],
    ]);
    expect(one.result.arms.map((a) => [a.arm, a.requests, a.expectedShare])).toEqual(
      result!.arms.map((a) => [a.arm, a.requests, a.expectedShare]),
    );
    const stop = { method: 'POST', body: { tenant: 'shop-a', id: 'ranker-ab' } };
    expect((await viewer('/api/experiments/stop', stop)).status).toBe(403);
    expect((await viewer('/api/experiments/promote', { ...stop, body: { ...stop.body, force: true } })).status).toBe(
      403,
    );

    const operator = client(base, { cookie: await loginAt(base, 'olga', 'olga-password') });
    // Another tenant's experiment reads as missing there; bad input names its field.
    expect((await operator('/api/experiments/ranker-ab?tenant=shop-b')).status).toBe(404);
    expect(
      (await operator('/api/experiments/stop', { method: 'POST', body: { tenant: 'shop-a' } })).body,
    ).toMatchObject({ field: 'id' });
    // No winner yet: promotion needs force, and says why.
    const refused = await operator('/api/experiments/promote', {
      method: 'POST',
      body: { tenant: 'shop-a', id: 'ranker-ab', arm: 'candidate' },
    });
    expect([refused.status, (refused.body as { error: string }).error]).toEqual([409, expect.stringMatching(/force/)]);
    const promoted = await operator('/api/experiments/promote', {
      method: 'POST',
      body: { tenant: 'shop-a', id: 'ranker-ab', arm: 'candidate', force: true },
    });
    expect(promoted.status).toBe(200);
    expect(promoted.body as ExperimentActionResult).toMatchObject({
      activated: { ranker: 'candidate-1' },
      experiment: { id: 'ranker-ab', state: 'stopped', stopReason: "promoted arm 'candidate'" },
    });
    expect((await registry.activeMeta('shop-a', 'ranker'))?.version).toBe('candidate-1');
    expect((await rpc.get({ tenant: 'shop-a', id: 'ranker-ab' })).experiment?.state).toBe(
      experimentV1.State.STATE_STOPPED,
    );
  });
});

describe('trusted proxy', () => {
  test('believes the user header only from a trusted address and maps groups to tenants', async () => {
    const trusted = await start({
      AISLE_CONSOLE_AUTH: 'proxy',
      AISLE_CONSOLE_ACCESS_FILE: accessFile,
      AISLE_CONSOLE_TRUSTED_PROXIES: '127.0.0.0/8',
    });
    const asTeam = client(trusted, {
      headers: { 'X-Forwarded-User': 'bo', 'X-Forwarded-Groups': 'shop-b-team, other' },
    });
    expect((await asTeam('/api/session')).body).toMatchObject({ user: 'bo', role: 'operator', tenants: ['shop-b'] });
    expect((await asTeam('/api/dead-letters?tenant=shop-a')).status).toBe(403);
    expect((await client(trusted)('/api/session')).status).toBe(401);
    const untrusted = await start({
      AISLE_CONSOLE_AUTH: 'proxy',
      AISLE_CONSOLE_ACCESS_FILE: accessFile,
      AISLE_CONSOLE_TRUSTED_PROXIES: '10.0.0.0/8',
    });
    expect((await client(untrusted, { headers: { 'X-Forwarded-User': 'olga' } })('/api/session')).status).toBe(401);
  });
});
