/**
 * The experiment service over a real nats-server, SQLite and gRPC: definitions in the KV bucket with
 * field-level errors; a simulated experiment on a generated shop published as served impressions and
 * clickstream events, joined into exactly the figures the analysis gives on the simulation itself; a
 * biased assignment tripping the sample-ratio check; a failing arm stopped by its guardrail, with a result
 * event saying why; and a replay of both streams into a fresh store giving the identical result.
 */
import {
  clickstreamV1,
  ContentTypes,
  experimentV1,
  Headers,
  privacyV1,
  rankingV1,
  Streams,
  Subjects,
} from '@aisle/contracts';
import { generateShop, Rng, shoppers } from '@aisle/datagen';
import {
  analyzeExperiment,
  normalizeExperiment,
  simulateExperiment,
  type Experiment,
  type JoinedRequest,
  type SimulationSpec,
} from '@aisle/experiments';
import {
  createGrpcClient,
  ExperimentBucket,
  ExperimentConflictError,
  grpc,
  isGrpcError,
  ModelRegistry,
  startServiceInProcess,
  type InProcessService,
} from '@aisle/runtime';
import { eventually, startNatsServer, tempSqliteUrl, type NatsServerHandle } from '@aisle/testkit';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { SERVED_DURABLE, startExperiment } from '../src/app';
import { loadExperimentConfig } from '../src/config';

jest.setTimeout(180_000);

const { Design, Metric, State } = experimentV1;
const { Surface } = rankingV1;
type Client = ReturnType<typeof createGrpcClient<typeof experimentV1.ExperimentServiceService>>;

let nats: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
const stores: Array<ReturnType<typeof tempSqliteUrl>> = [];
let service: InProcessService | undefined;
let client: Client;
/** Every result event published, as a subscriber sees them. */
const resultEvents: experimentV1.ExperimentResult[] = [];

async function start(): Promise<void> {
  const store = tempSqliteUrl();
  stores.push(store);
  const config = loadExperimentConfig({
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: store.url,
    AISLE_GRPC_PORT: '0',
    AISLE_METRICS_PORT: '-1',
    AISLE_TENANTS: 'default,crud,srm,guard,promo,forget,nobody',
    AISLE_LOG_LEVEL: 'warn',
    AISLE_EXPERIMENT_ANALYSIS_INTERVAL: '250ms',
    AISLE_EXPERIMENT_OUTCOME_RETRY: '200ms',
    AISLE_EXPERIMENT_SERVED_GRACE: '1s',
  });
  service = await startServiceInProcess('experiment', config, startExperiment);
  client = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${service.grpcPort}`, {
    deadlineMs: 30_000,
  });
}

async function stop(): Promise<void> {
  client?.close();
  await service?.stop();
  service = undefined;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  nc.subscribe(Subjects.experimentResult, {
    callback: (err, msg) => {
      if (!err) resultEvents.push(experimentV1.ExperimentResult.decode(msg.data));
    },
  });
  await start();
});

afterAll(async () => {
  await stop();
  await nc?.close();
  await nats?.dispose();
  for (const s of stores) s.dispose();
});

async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    if (isGrpcError(err)) return err;
    throw err;
  }
  throw new Error('expected a gRPC error');
}

const shop = generateShop({ seed: 11, items: 300, users: 1500, days: 1 });
const people = shoppers(shop);

function simulate(e: Experiment, requests: number, seed: number, extra: Partial<SimulationSpec> = {}): JoinedRequest[] {
  const noise: Record<string, number> = { worse: 0.14, better: 0.1 };
  return simulateExperiment({
    experiment: e,
    requests,
    limit: 10,
    start: (e.startTime?.getTime() ?? 0) + 1000,
    intervalMs: 20,
    ...people.traffic(new Rng(seed), (arm) => noise[arm] ?? 0.12),
    idPrefix: `${e.tenant}-${e.id}`,
    ...extra,
  });
}

/** Publishes a simulation as ranking and ingest would: served impressions and normalized events, in time order. */
async function publish(e: Experiment, data: readonly JoinedRequest[], msgIdSuffix = ''): Promise<void> {
  const h = headers();
  h.set(Headers.contentType, ContentTypes.protobuf);
  const messages: Array<{ at: number; subject: string; payload: Uint8Array; id: string }> = [];
  for (const { served, outcomes } of data) {
    const userId = served.unit.slice(2);
    messages.push({
      at: served.servedAt,
      subject: Subjects.rankingServed,
      id: served.requestId,
      payload: rankingV1.Served.encode({
        requestId: served.requestId,
        tenant: e.tenant,
        userId,
        surface: e.surface,
        query: '',
        items: served.items.map((i, k) => ({ itemId: i.itemId, position: k + 1, score: 1 / (k + 1), team: i.team })),
        modelVersion: 'sim',
        degraded: false,
        servedAt: new Date(served.servedAt),
        experiment: {
          experimentId: e.id,
          arm: served.arm,
          interleaved: served.interleaved,
          runs: served.runs.map((r) => ({ ...r, error: '' })),
        },
      }).finish(),
    });
    for (const o of outcomes) {
      const price = o.revenue;
      messages.push({
        at: o.occurredAt,
        subject: Subjects.events(o.type),
        id: `${e.tenant}:${o.eventId}`,
        payload: clickstreamV1.Event.encode(
          clickstreamV1.Event.fromPartial({
            eventId: o.eventId,
            tenant: e.tenant,
            type: o.type,
            userId,
            itemId: o.itemId,
            quantity: 1,
            price,
            occurredAt: new Date(o.occurredAt),
            requestId: served.requestId,
          }),
        ).finish(),
      });
    }
  }
  messages.sort((a, b) => a.at - b.at);
  for (let i = 0; i < messages.length; i += 500)
    await Promise.all(
      messages
        .slice(i, i + 500)
        .map((m) => js.publish(m.subject, m.payload, { headers: h, msgID: `${m.id}${msgIdSuffix}` })),
    );
}

/** Waits until the service's figures equal `expected` (all of it joined), then returns them. */
async function resultsEqual(tenant: string, id: string, expected: experimentV1.ExperimentResult) {
  const strip = (r: experimentV1.ExperimentResult | undefined) => (r ? { ...r, state: 0, stopReason: '' } : r);
  return eventually(
    async () => {
      const { result } = await client.getResults({ tenant, id });
      try {
        expect(strip(result)).toEqual(strip(expected));
        return result;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 90_000, intervalMs: 500, what: `results of ${id}` },
  );
}

async function create(e: Parameters<typeof experimentV1.Experiment.fromPartial>[0]): Promise<Experiment> {
  const { experiment } = await client.create({ experiment: experimentV1.Experiment.fromPartial(e) });
  return experiment!;
}

/** An A/B test on Recommend between the simulation's arms 'worse' and 'better'. */
const createWorseBetter = (tenant: string, id: string) =>
  create({
    tenant,
    id,
    surface: Surface.SURFACE_RECOMMEND,
    design: Design.DESIGN_AB,
    arms: [{ name: 'worse' }, { name: 'better' }],
  });

test('definitions: created, read, listed and stopped through the KV bucket; bad ones named by field', async () => {
  const bad = await grpcError(
    client.create({
      experiment: experimentV1.Experiment.fromPartial({
        id: 'bad',
        surface: Surface.SURFACE_RECOMMEND,
        design: Design.DESIGN_AB,
        arms: [{ name: 'a' }, { name: 'b', trafficShare: 0.7 }],
      }),
    }),
  );
  expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(bad.details).toContain('experiment.arms');
  const interleavingSimilar = await grpcError(
    client.create({
      experiment: experimentV1.Experiment.fromPartial({
        id: 'bad2',
        surface: Surface.SURFACE_SIMILAR_ITEMS,
        design: Design.DESIGN_INTERLEAVING,
        arms: [{ name: 'a' }, { name: 'b' }],
      }),
    }),
  );
  expect(interleavingSimilar.details).toMatch(/^experiment\.surface: /);

  const e = await create({
    tenant: 'crud',
    id: 'first',
    surface: Surface.SURFACE_RECOMMEND,
    design: Design.DESIGN_AB,
    arms: [
      { name: 'control' },
      { name: 'boost', rules: { retentionBoost: 0.5, churnRiskThreshold: 0, maxPerCategory: 0 } },
    ],
  });
  expect(e.state).toBe(State.STATE_RUNNING);
  expect(e.arms[1]?.rules?.churnRiskThreshold).toBe(0.5);
  const bucket = await ExperimentBucket.open(nc);
  const stored = await bucket.get('crud', 'first');
  expect(stored?.experiment.arms.map((a) => a.name)).toEqual(['control', 'boost']);
  // Writes are compare-and-set: a second create of the key, or an update from a stale revision, lose.
  await expect(bucket.create(e)).rejects.toBeInstanceOf(ExperimentConflictError);
  await expect(bucket.update(e, (stored?.revision ?? 0) + 100)).rejects.toBeInstanceOf(ExperimentConflictError);

  const taken = await grpcError(client.create({ experiment: { ...e, surface: Surface.SURFACE_SEARCH } }));
  expect(taken.code).toBe(grpc.status.FAILED_PRECONDITION);
  const busy = await grpcError(client.create({ experiment: { ...e, id: 'second' } }));
  expect(busy.code).toBe(grpc.status.FAILED_PRECONDITION);
  expect(busy.details).toContain("'first'");
  expect((await grpcError(client.get({ tenant: 'crud', id: 'nope' }))).code).toBe(grpc.status.NOT_FOUND);

  const stopped = (await client.stop({ tenant: 'crud', id: 'first', reason: 'done' })).experiment;
  expect(stopped).toMatchObject({ state: State.STATE_STOPPED, stopReason: 'done' });
  expect((await client.get({ tenant: 'crud', id: 'first' })).experiment?.state).toBe(State.STATE_STOPPED);
  // Once stopped, the surface is free again.
  await create({ ...e, id: 'second', startTime: undefined });
  expect((await client.list({ tenant: 'crud' })).experiments.map((x) => x.id)).toEqual(['second', 'first']);
  expect((await client.list({ tenant: 'nobody' })).experiments).toEqual([]);
});

test('a planted preference, published as streams, is joined into the figures of the simulation; replay gives the same', async () => {
  const inter = await create({
    id: 'planted-il',
    surface: Surface.SURFACE_RECOMMEND,
    design: Design.DESIGN_INTERLEAVING,
    arms: [{ name: 'worse' }, { name: 'better' }],
  });
  const ab = await create({
    id: 'planted-ab',
    surface: Surface.SURFACE_SEARCH,
    design: Design.DESIGN_AB,
    arms: [{ name: 'worse' }, { name: 'better' }],
    primaryMetric: Metric.METRIC_CTR,
  });
  const dataIl = simulate(inter, 3000, 1);
  const dataAb = simulate(ab, 3000, 1);
  await Promise.all([publish(inter, dataIl), publish(ab, dataAb)]);

  const now = Date.now();
  const il = await resultsEqual('default', inter.id, analyzeExperiment(normalizeExperiment(inter, now), dataIl, now));
  expect(il.interleaving?.clicks?.pValue).toBeLessThan(0.01);
  expect(il.winner).toBe('better');
  const abResult = await resultsEqual('default', ab.id, analyzeExperiment(normalizeExperiment(ab, now), dataAb, now));
  const ctr = abResult.comparisons.find((c) => c.metric === Metric.METRIC_CTR);
  expect(ctr?.pValue).toBeLessThan(0.05);
  expect(abResult.winner).toBe('better');
  expect(abResult.arms.every((a) => a.clicks > 0 && a.purchases > 0 && a.revenue > 0)).toBe(true);

  // Results are published as events too, the same figures.
  await eventually(() =>
    resultEvents.some((r) => r.experimentId === inter.id && r.asOf?.getTime() === il.asOf?.getTime()),
  );
  expect(resultEvents.filter((r) => r.experimentId === inter.id).pop()).toEqual(il);

  // Replay: a fresh store, the consumers rewound to the start of both streams.
  const jsm = await jetstreamManager(nc);
  await stop();
  for (const durable of [SERVED_DURABLE]) await jsm.consumers.delete(Streams.RANKING.name, durable);
  await jsm.consumers.delete(Streams.EVENTS.name, 'experiment-outcomes');
  await start();
  expect(await resultsEqual('default', inter.id, il)).toEqual(il);
  expect(await resultsEqual('default', ab.id, abResult)).toEqual(abResult);
});

test('a biased assignment trips the sample-ratio check', async () => {
  const e = await createWorseBetter('srm', 'biased');
  const data = simulate(e, 2500, 2, {
    assign: (unit, hashed) => (hashed === 'better' && unit.charCodeAt(unit.length - 1) % 4 === 0 ? 'worse' : hashed),
  });
  await publish(e, data);
  const now = Date.now();
  const r = await resultsEqual('srm', e.id, analyzeExperiment(normalizeExperiment(e, now), data, now));
  expect(r.sampleRatio?.mismatch).toBe(true);
  expect(r.sampleRatio?.pValue).toBeLessThan(0.001);
});

test('an arm that keeps failing is stopped by its guardrail, and the result event says why', async () => {
  const e = await create({
    tenant: 'guard',
    id: 'failing',
    surface: Surface.SURFACE_SIMILAR_ITEMS,
    design: Design.DESIGN_AB,
    arms: [{ name: 'control' }, { name: 'broken' }],
    guardrails: { maxErrorRate: 0.05, maxDegradedRate: 0, maxP95LatencyMs: 0, minRequests: 100 },
  });
  const rng = new Rng(3);
  const data = simulate(e, 600, 3, {
    run: (arm) => ({ latencyMs: 4, degraded: false, failed: arm === 'broken' && rng.chance(0.4) }),
  });
  await publish(e, data);
  const stopped = await eventually(
    async () => {
      const x = (await client.get({ tenant: 'guard', id: 'failing' })).experiment;
      return x?.state === State.STATE_STOPPED ? x : undefined;
    },
    { timeoutMs: 60_000, what: 'guardrail stop' },
  );
  expect(stopped.stopReason).toMatch(/^guardrail: arm 'broken': error rate 0\.\d+ \(95 % CI/);
  const last = await eventually(() =>
    resultEvents.find((r) => r.experimentId === 'failing' && r.state === State.STATE_STOPPED),
  );
  expect(last.stopReason).toBe(stopped.stopReason);
  expect(last.guardrails.find((g) => g.tripped)?.arm).toBe('broken');
});

test('Promote: the winning arm\u2019s stored version becomes active and is announced; an unknown version is NOT_FOUND and moves nothing', async () => {
  const registry = await ModelRegistry.open(nc);
  const onnx = new TextEncoder().encode('not really onnx: the registry only checks the digest');
  await registry.storeVersion({ tenant: 'promo', name: 'ranker', version: 'r2', onnx, sidecar: {}, meta: {} });
  expect(await registry.activeMeta('promo', 'ranker')).toBeUndefined();
  const announced: string[] = [];
  const sub = registry.watch((m) => announced.push(`${m.tenant}/${m.name}/${m.version}`));
  try {
    await create({
      tenant: 'promo',
      id: 'next',
      surface: Surface.SURFACE_RECOMMEND,
      design: Design.DESIGN_INTERLEAVING,
      arms: [{ name: 'active' }, { name: 'candidate', models: { ranker: 'r2' } }],
    });
    const promoted = await client.promote({ tenant: 'promo', id: 'next', arm: 'candidate', force: true });
    expect(promoted.activated).toEqual({ ranker: 'r2' });
    expect(promoted.experiment?.state).toBe(State.STATE_STOPPED);
    expect((await registry.activeMeta('promo', 'ranker'))?.version).toBe('r2');
    await eventually(() => announced.includes('promo/ranker/r2'), { what: 'the activation announced' });

    await create({
      tenant: 'promo',
      id: 'ghost',
      surface: Surface.SURFACE_RECOMMEND,
      design: Design.DESIGN_AB,
      arms: [{ name: 'a' }, { name: 'b', models: { ranker: 'r3', session: 'never-stored' } }],
    });
    await registry.storeVersion({ tenant: 'promo', name: 'ranker', version: 'r3', onnx, sidecar: {}, meta: {} });
    // All of the arm or nothing: its stored ranker does not go live without its missing session model.
    const missing = await grpcError(client.promote({ tenant: 'promo', id: 'ghost', arm: 'b', force: true }));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.details).toContain('session has no version never-stored');
    expect((await registry.activeMeta('promo', 'ranker'))?.version).toBe('r2');
  } finally {
    sub.unsubscribe();
  }
});

test('a forget request erases the user\u2019s stored requests; results stay aggregate over the others', async () => {
  const e = await createWorseBetter('forget', 'who');
  const data = simulate(e, 400, 3);
  await publish(e, data);
  const now = Date.now();
  await resultsEqual('forget', 'who', analyzeExperiment(normalizeExperiment(e, now), data, now));
  const unit = data[0]!.served.unit;
  const userId = unit.slice(2);
  const theirs = data.filter((r) => r.served.unit === unit).length;
  // The simulated traffic runs a few seconds ahead of the clock: the request comes after all of it.
  const lastServed = Math.max(...data.filter((r) => r.served.unit === unit).map((r) => r.served.servedAt));
  await new Promise((r) => setTimeout(r, Math.max(0, lastServed + 100 - Date.now())));

  const forgotten: privacyV1.UserForgotten[] = [];
  const sub = nc.subscribe(Subjects.privacyForgotten, {
    callback: (err, m) => {
      if (!err) forgotten.push(privacyV1.UserForgotten.decode(m.data));
    },
  });
  try {
    const h = headers();
    h.set(Headers.contentType, ContentTypes.protobuf);
    await js.publish(
      Subjects.privacyForget('forget'),
      privacyV1.ForgetUser.encode(
        privacyV1.ForgetUser.fromPartial({ tenant: 'forget', userId, requestId: 'forget-1' }),
      ).finish(),
      { headers: h },
    );
    const done = await eventually(() => forgotten.find((f) => f.owner === 'experiment' && f.requestId === 'forget-1'), {
      what: 'the experiment service forgot the user',
      timeoutMs: 30_000,
    });
    // Their stored requests, each once (ranking erases the served messages from RANKING).
    expect(done.records).toBe(theirs);
    // The figures are those of everyone else: the user is in no count, no unit, no interval.
    const rest = data.filter((r) => r.served.unit !== unit);
    const after = Date.now();
    const result = await resultsEqual('forget', 'who', analyzeExperiment(normalizeExperiment(e, after), rest, after));
    expect(JSON.stringify(result)).not.toContain(userId);

    // Their impressions and outcomes replayed (served before the request): dropped, not stored again.
    const servedTotal = async (result: string) => {
      const metric = await service!.base.registry.getSingleMetric('aisle_experiment_served_total')!.get();
      return metric.values.find((v) => v.labels['result'] === result)?.value ?? 0;
    };
    const keptBefore = await servedTotal('kept');
    await publish(
      e,
      data.filter((r) => r.served.unit === unit),
      ':replayed',
    );
    await eventually(async () => ((await servedTotal('forgotten')) === theirs ? true : undefined), {
      what: 'the replayed impressions were dropped',
      timeoutMs: 30_000,
    });
    expect(await servedTotal('kept')).toBe(keptBefore);
    const later = Date.now();
    await resultsEqual('forget', 'who', analyzeExperiment(normalizeExperiment(e, later), rest, later));
  } finally {
    sub.unsubscribe();
  }
});
