/**
 * Issues #17 and #18: least privilege on the bus. nats-server runs with the prod overlay's own
 * authorization.conf (only the passwords are test values); every service runs as its own NATS user, the
 * demo producer (`pnpm seed`) publishes a shop as the producer user, the trainer job trains and publishes. Everything flows (features,
 * hot-loaded models, a Recommend answer from the learned ranker, the console's overview, dead letters with a
 * replay, models with an activation, and experiments) without a single permission violation in the server's
 * log, and what each user must not do is refused.
 */
import { experimentV1, privacyV1, rankingV1, Streams } from '@aisle/contracts';
import { startLocalStack, type LocalStack } from '@aisle/local-stack';
import { connectNats, createGrpcClient, memoryLogger, type NatsConnection } from '@aisle/runtime';
import { eventually, healthCheck, runJobProcess, tempSqliteUrl } from '@aisle/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type {
  DeadLetterDetail,
  DeadLetterPage,
  ExperimentView,
  ModelsView,
  OverviewSnapshot,
} from '../../services/console/src/api';

jest.setTimeout(300_000);

const root = join(__dirname, '..', '..');
const AUTHORIZATION = join(root, 'k8s', 'overlays', 'prod', 'authorization.conf');
const SERVICES = ['ingest', 'feature', 'embedding-inference', 'ranking', 'churn-prediction', 'experiment', 'console'];
const USERS = [...SERVICES, 'trainer', 'producer'];
/** As scripts/k8s.mjs names them: the keys of the Secret aisle-nats-users. */
const passwordVariable = (user: string) => `${user.toUpperCase().replace(/-/g, '_')}_PASSWORD`;
const password = (user: string) => `test-password-of-${user}`;

let dir: string;
let serverLog = '';
let storeFile: ReturnType<typeof tempSqliteUrl>;
let stack: LocalStack;
const connections: NatsConnection[] = [];

/**
 * Connects as a user and records the errors the server reports on the connection: Aisle users the way
 * the services do, the producer the way the README's producer example does (a plain nats.js client).
 */
async function connectAs(user: string): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc =
    user === 'producer'
      ? await connect({ servers: stack.nats.url, user, pass: password(user) })
      : await connectNats({
          servers: stack.nats.url,
          name: `probe-${user}`,
          user,
          password: password(user),
          logger: memoryLogger(),
        });
  connections.push(nc);
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error?.message));
  })();
  return { nc, errors };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aisle-nats-auth-'));
  // nats-server resolves `include` relative to the including file.
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, `include '${relative(dir, AUTHORIZATION)}'\n`);
  storeFile = tempSqliteUrl();
  stack = await startLocalStack({
    storeUrl: storeFile.url,
    nats: {
      args: ['-c', conf],
      env: Object.fromEntries(USERS.map((u) => [passwordVariable(u), password(u)])),
      onLog: (text) => (serverLog += text),
    },
    serviceEnv: (name) => ({
      AISLE_NATS_USER: name,
      AISLE_NATS_PASSWORD: password(name),
      // As in production: the producer's NATS user, through the subject, decides the tenant.
      ...(name === 'ingest' ? { AISLE_INGEST_SUBJECT_TENANT: 'required' } : {}),
      AISLE_TENANTS: 'default,shop-b',
    }),
  });
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close()));
  await stack?.stop();
  storeFile?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const violations = () => serverLog.split('\n').filter((l) => /Violation/.test(l));

/** The console's HTTP API (local development: no login). */
async function consoleApi<T>(path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(new URL(path, stack.consoleUrl), {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as T };
}

test('every service, the trainer and a producer do their work with exactly the grants they have', async () => {
  // The demo producer (`pnpm seed`), with the producer's grants only.
  const seed = spawnSync(
    process.execPath,
    [
      join(root, 'deploy', 'local', 'dist', 'seed.js'),
      ...['--nats', stack.nats.url, '--user', 'producer', '--password', password('producer')],
      ...['--users', '60', '--items', '50'],
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(seed.stderr).toBe('');
  const [, items = '0', events = '0'] = /published (\d+) catalog items and (\d+) events/.exec(seed.stdout) ?? [];
  const user = /ask Recommend for user (\S+),/.exec(seed.stdout)?.[1] ?? '';
  expect(Number(events)).toBeGreaterThan(500);
  // One producer bug, so that ingest's dead-letter path runs under its grants too; and a valid event for
  // shop-b (declared) on default's subject: the producer may publish only for default, so it is refused.
  const { nc: producer } = await connectAs('producer');
  await jetstream(producer).publish(
    'aisle.clickstream.v1.view.default',
    new TextEncoder().encode('{"event_id":"no-user","type":"view"}'),
  );
  await jetstream(producer).publish(
    'aisle.clickstream.v1.view.default',
    new TextEncoder().encode('{"event_id":"e-b","tenant":"shop-b","user_id":"u","item_id":"i","type":"view"}'),
  );

  // Observed with the grants of the streams' writers: ingest for EVENTS and ITEMS, ranking for RANKING.
  const jsm = await jetstreamManager((await connectAs('ingest')).nc);
  await eventually(
    async () =>
      (await jsm.streams.info(Streams.EVENTS.name)).state.messages >= Number(events) &&
      (await jsm.streams.info(Streams.ITEMS.name)).state.messages >= Number(items),
    { what: 'events normalized and the catalog accepted', timeoutMs: 120_000 },
  );
  await eventually(async () => (await jsm.streams.info(Streams.DLQ.name)).state.messages === 2, {
    what: 'the bad events dead-lettered',
  });
  // The console under its grants: the overview (every stream, every durable), the dead letter and its
  // bytes, and a replay to the producers' subject (ingest dead-letters it again).
  const letters = await eventually(
    async () => {
      const r = await consoleApi<DeadLetterPage>('/api/dead-letters?tenant=default');
      return r.body.total === 2 ? r.body : undefined;
    },
    { what: 'the dead letters in the console' },
  );
  const details = await Promise.all(
    letters.items.map(
      async (i) => (await consoleApi<DeadLetterDetail>(`/api/dead-letters/${i.seq}?tenant=default`)).body,
    ),
  );
  const seq = details.find((d) => d.text?.includes('no-user'))!.seq;
  const overview = (await consoleApi<OverviewSnapshot>('/api/overview?tenant=default')).body;
  expect(overview.streams.map((x) => x.stream)).toEqual(expect.arrayContaining(['EVENTS', 'DLQ']));
  expect(overview.consumers.map((x) => x.consumer)).toContain('feature');
  expect((await consoleApi('/api/dead-letters/replay', { tenant: 'default', seqs: [seq] })).status).toBe(200);
  await eventually(async () => (await jsm.streams.info(Streams.DLQ.name)).state.messages === 3, {
    what: 'the replayed bad event dead-lettered again',
  });

  const trainer = await runJobProcess('trainer', {
    ...stack.env(),
    AISLE_NATS_USER: 'trainer',
    AISLE_NATS_PASSWORD: password('trainer'),
    AISLE_TRAINER_SASREC_EPOCHS: '1',
    AISLE_TRAINER_MIN_EVENTS: '100',
    // About grants, not model quality: a small shop's held-out slice must not keep a model back.
    AISLE_TRAINER_MIN_HELD_OUT_CASES: '1',
    AISLE_TRAINER_BEAT_BASELINE: 'false',
    AISLE_METRICS_PORT: '-1',
  });
  expect(trainer.stderr).toBe('');
  expect(trainer.code).toBe(0);
  expect(
    trainer.logs
      .filter((l) => l['msg'] === 'model published')
      .map((l) => l['model'])
      .sort(),
  ).toEqual(['churn', 'ranker', 'sasrec', 'search_ranker', 'session', 'text_encoder']);

  const s = stack.services;
  await eventually(
    async () =>
      (await healthCheck(`127.0.0.1:${stack.embeddingPort}`, 'aisle.embedding.v1.EmbeddingService')) === 'SERVING' &&
      (await healthCheck(`127.0.0.1:${s.churn.grpcPort}`, 'aisle.churn.v1.ChurnService')) === 'SERVING' &&
      s.ranking.logs.some((l) => l['msg'] === 'model active'),
    { what: 'models hot-loaded by every reader', timeoutMs: 120_000 },
  );
  const ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${s.ranking.grpcPort}`, {
    deadlineMs: 5000,
  });
  try {
    // Recommendations from the hot-loaded models (a loaded machine may first answer degraded).
    const res = await eventually(
      async () => {
        const r = await ranking.recommend({
          tenant: '',
          userId: user,
          limit: 5,
          filters: undefined,
          context: {},
          explain: false,
          sessionItemIds: [],
        });
        return r.items.length > 0 && !r.degraded ? r : undefined;
      },
      { what: 'a Recommend answer', timeoutMs: 30_000 },
    );
    expect(res.modelVersion).toMatch(/sasrec:.*ranker:/);
  } finally {
    ranking.close();
  }
  // The console lists every model kind and rolls churn back to the version it runs (pointer and announcement).
  const models = (await consoleApi<ModelsView>('/api/models?tenant=default')).body;
  const churnVersion = models.kinds.find((k) => k.name === 'churn')?.activeVersion;
  expect(
    (await consoleApi('/api/models/activate', { tenant: 'default', name: 'churn', version: churnVersion })).status,
  ).toBe(200);
  // Impressions went out too.
  const rankingJsm = await jetstreamManager((await connectAs('ranking')).nc);
  await eventually(async () => (await rankingJsm.streams.info(Streams.RANKING.name)).state.messages > 0, {
    what: 'served impressions',
  });

  // An experiment: defined through the experiment service (KV write), followed by ranking (KV watch),
  // its impressions joined (both durables), then promoted (the model pointer re-written and announced).
  const rankerVersion = String(trainer.logs.find((l) => l['model'] === 'ranker')?.['version']);
  const experiments = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${s.experiment.grpcPort}`, {
    deadlineMs: 10_000,
  });
  const rankingAgain = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${s.ranking.grpcPort}`, {
    deadlineMs: 5000,
  });
  try {
    await experiments.create({
      experiment: experimentV1.Experiment.fromPartial({
        id: 'grants',
        surface: rankingV1.Surface.SURFACE_RECOMMEND,
        design: experimentV1.Design.DESIGN_INTERLEAVING,
        arms: [{ name: 'active' }, { name: 'pinned', models: { ranker: rankerVersion } }],
      }),
    });
    await eventually(
      async () =>
        (
          await rankingAgain.recommend({
            tenant: '',
            userId: user,
            limit: 5,
            filters: undefined,
            context: {},
            explain: false,
            sessionItemIds: [],
          })
        ).modelVersion.startsWith('active='),
      { what: 'ranking interleaving the arms', timeoutMs: 30_000 },
    );
    await eventually(
      async () =>
        ((await experiments.getResults({ tenant: '', id: 'grants' })).result?.interleaving?.requests ?? 0) > 0,
      { what: 'impressions joined', timeoutMs: 30_000 },
    );
    // The console reads it and its results (it holds no NATS grant for them: they come over gRPC).
    const shown = (await consoleApi<ExperimentView>('/api/experiments/grants?tenant=default')).body;
    expect(shown.result.interleaving?.requests).toBeGreaterThan(0);
    const promoted = await experiments.promote({ tenant: '', id: 'grants', arm: 'pinned', force: true });
    expect(promoted.activated).toEqual({ ranker: rankerVersion });
  } finally {
    experiments.close();
    rankingAgain.close();
  }
  // Forgetting the user of the rejected shop-b event (a forget request on the producer's own subject):
  // its dead letter is erased under the owners' grants.
  await jetstream(producer).publish(
    'aisle.privacy.v1.forget.default',
    privacyV1.ForgetUser.encode(
      privacyV1.ForgetUser.fromPartial({ tenant: 'default', userId: 'u', requestId: 'grants' }),
    ).finish(),
  );
  await eventually(async () => (await jsm.streams.info(Streams.DLQ.name)).state.messages === 2, {
    what: "the forgotten user's dead letter erased",
  });
  expect(violations()).toEqual([]);
});

/** What each user must not do: publishes (including JetStream API calls) and subscriptions. */
const FORBIDDEN: Record<string, { publish: string[]; subscribe: string[] }> = {
  producer: {
    publish: [
      // Another tenant's subjects, and the tenant-less ones (whose tenant the payload would claim).
      'aisle.clickstream.v1.view.shop-b',
      'aisle.clickstream.v1.view',
      'aisle.catalog.v1.upsert.shop-b',
      'aisle.catalog.v1.upsert',
      'aisle.privacy.v1.forget.shop-b',
      'aisle.events.v1.view',
      'aisle.dlq.v1.clickstream',
      'aisle.models.v1.published',
      '$O.aisle-models.C.forged',
      '$O.aisle-models.M.forged',
      '$JS.API.STREAM.DELETE.EVENTS',
      '$JS.API.STREAM.PURGE.CLICKSTREAM',
      '$JS.API.STREAM.UPDATE.CLICKSTREAM',
      '$JS.API.STREAM.DELETE.OBJ_aisle-models',
      '$JS.API.CONSUMER.CREATE.EVENTS.spy.aisle.events.v1.>',
      '$JS.API.CONSUMER.MSG.NEXT.EVENTS.feature',
    ],
    subscribe: ['aisle.events.v1.>', '_INBOX_feature.>', 'aisle.models.v1.published'],
  },
  ingest: {
    publish: ['$O.aisle-models.C.forged', 'aisle.models.v1.published', '$JS.API.STREAM.DELETE.EVENTS'],
    subscribe: ['_INBOX.>', '_INBOX_feature.>'],
  },
  feature: {
    publish: [
      'aisle.events.v1.view',
      '$JS.API.CONSUMER.MSG.NEXT.CLICKSTREAM.ingest-clickstream',
      '$JS.API.STREAM.PURGE.EVENTS',
      '$O.aisle-models.C.forged',
    ],
    subscribe: ['_INBOX.>'],
  },
  'embedding-inference': {
    publish: [
      '$O.aisle-models.C.forged',
      'aisle.models.v1.published',
      '$JS.API.STREAM.PURGE.OBJ_aisle-models',
      '$JS.API.STREAM.UPDATE.OBJ_aisle-models',
      '$JS.API.CONSUMER.MSG.NEXT.EVENTS.feature',
      '$JS.ACK.EVENTS.feature.1.1.1.1.0',
      '$JS.API.CONSUMER.CREATE.EVENTS.spy.aisle.events.v1.>',
      'aisle.events.v1.view',
    ],
    subscribe: ['_INBOX_ranking.>'],
  },
  ranking: {
    publish: [
      '$O.aisle-models.M.forged',
      'aisle.models.v1.published',
      '$JS.API.CONSUMER.CREATE.EVENTS.feature.aisle.events.v1.item',
      '$KV.aisle-experiments.default.forged',
      // Only ingest publishes the accepted catalog.
      'aisle.items.v1.default.Zm9yZ2Vk',
    ],
    subscribe: ['_INBOX.>'],
  },
  'churn-prediction': {
    publish: ['$O.aisle-models.C.forged', '$JS.API.STREAM.DELETE.FEATURES', 'aisle.features.v1.user_updated'],
    subscribe: ['_INBOX_trainer.>'],
  },
  experiment: {
    publish: [
      'aisle.events.v1.view',
      'aisle.ranking.v1.served',
      '$JS.API.STREAM.DELETE.KV_aisle-experiments',
      '$JS.API.STREAM.DELETE.OBJ_aisle-models',
      '$JS.API.CONSUMER.MSG.NEXT.EVENTS.feature',
    ],
    subscribe: ['_INBOX.>', '_INBOX_ranking.>'],
  },
  console: {
    publish: [
      'aisle.events.v1.view',
      'aisle.dlq.v1.clickstream',
      '$JS.API.STREAM.DELETE.DLQ',
      '$JS.API.STREAM.PURGE.DLQ',
      '$JS.API.STREAM.MSG.DELETE.DLQ',
      '$JS.API.CONSUMER.MSG.NEXT.EVENTS.feature',
      '$JS.API.CONSUMER.CREATE.EVENTS.spy.aisle.events.v1.>',
      '$KV.aisle-experiments.default.forged',
    ],
    subscribe: ['_INBOX.>', '_INBOX_ranking.>', 'aisle.events.v1.>'],
  },
  trainer: {
    publish: [
      'aisle.events.v1.view',
      'aisle.clickstream.v1.view',
      '$JS.API.STREAM.DELETE.OBJ_aisle-models',
      '$KV.aisle-experiments.default.forged',
    ],
    subscribe: ['aisle.events.v1.>'],
  },
};

test.each(Object.keys(FORBIDDEN))('what %s must not do is refused by the server', async (user) => {
  const { publish, subscribe } = FORBIDDEN[user]!;
  const { nc, errors } = await connectAs(user);
  for (const subject of publish) {
    const err: unknown = await nc.request(subject, new Uint8Array(0), { timeout: 3000 }).catch((e: unknown) => e);
    expect([subject, err instanceof Error ? err.message : 'answered']).toEqual([
      subject,
      `Permissions Violation for Publish to "${subject}"`,
    ]);
  }
  for (const subject of subscribe) {
    nc.subscribe(subject);
    await nc.flush();
    await eventually(() => errors.some((e) => e.includes(`Subscription to "${subject}"`)), {
      what: `${user} refused ${subject}`,
      timeoutMs: 5000,
    });
  }
  // The server's log reaches this process through a pipe, after the client has seen the error: wait for it.
  const logged = (subject: string) =>
    violations().some((l) => l.includes(`User "${user}"`) && l.includes(`"${subject}"`));
  await eventually(() => [...publish, ...subscribe].every(logged), {
    what: `the server logged ${user}'s violations`,
    timeoutMs: 5000,
  }).catch(() => undefined);
  for (const subject of [...publish, ...subscribe]) expect([subject, logged(subject)]).toEqual([subject, true]);
});
