/**
 * Issue #13, the right to be forgotten: a shopper's events flow through a running stack (ingest,
 * feature, churn-prediction and ranking, which serves them a recommendation in a running experiment and
 * records the impression, which the experiment service joins, as processes on one SQLite file and one
 * nats-server), then
 * IngestService/ForgetUser erases them. Within 30 s every owner has said `forgotten` (without the user
 * id), and the user id is found nowhere: not in the SQLite files (database and write-ahead log), not in
 * any file of the JetStream store directory, not in any service's log. The user's features are gone,
 * their co-visit contributions taken back, and a second request is a harmless no-op. Rejected input that
 * names the shopper (dead-lettered, and its raw copy) is erased too; events of the shopper from before the
 * request that arrive after it (in flight, replayed) are dropped, not stored again.
 */
import {
  clickstreamV1,
  ContentTypes,
  experimentV1,
  featureV1,
  Headers,
  ingestV1,
  privacyV1,
  rankingV1,
  Streams,
  Subjects,
} from '@aisle/contracts';
import { createGrpcClient, type GrpcClient } from '@aisle/runtime';
import {
  eventually,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { headers } from '@nats-io/transport-node';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connectTestBus, consumerCaughtUp } from '../support/bus';

jest.setTimeout(180_000);

const FORGOTTEN = `shopper-${process.pid}-${Date.now()}`;
const OTHER = 'shopper-who-stays';

/** Every file under `dir` (recursively) whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesContaining(path, needle));
    else if (readFileSync(path).includes(needle)) out.push(path);
  }
  return out;
}

describe('forgetting a shopper in a running stack', () => {
  let nats: NatsServerHandle;
  let storeFile: ReturnType<typeof tempSqliteUrl>;
  let services: ServiceProcess[] = [];
  let bus: Awaited<ReturnType<typeof connectTestBus>>;
  let ingest: GrpcClient<typeof ingestV1.IngestServiceService>;
  let features: GrpcClient<typeof featureV1.FeatureServiceService>;
  let ranking: GrpcClient<typeof rankingV1.RankingServiceService>;
  let experiments: GrpcClient<typeof experimentV1.ExperimentServiceService>;

  beforeAll(async () => {
    nats = await startNatsServer();
    storeFile = tempSqliteUrl();
    const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url };
    const [i, f] = await Promise.all([startServiceProcess('ingest', env), startServiceProcess('feature', env)]);
    const [c, r, x] = await Promise.all([
      startServiceProcess('churn-prediction', { ...env, AISLE_FEATURE_ADDR: `127.0.0.1:${f.grpcPort}` }),
      // No embedding-inference: ranking answers from co-visitation and popularity (degraded), which is enough.
      startServiceProcess('ranking', { ...env, AISLE_FEATURE_ADDR: `127.0.0.1:${f.grpcPort}` }),
      startServiceProcess('experiment', env),
    ]);
    services = [i, f, c, r, x];
    ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${r.grpcPort}`, { deadlineMs: 5000 });
    experiments = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${x.grpcPort}`, {
      deadlineMs: 5000,
    });
    bus = await connectTestBus(nats.url);
    ingest = createGrpcClient(ingestV1.IngestServiceService, `127.0.0.1:${i.grpcPort}`, { deadlineMs: 5000 });
    features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${f.grpcPort}`, { deadlineMs: 5000 });
  });

  afterAll(async () => {
    ingest?.close();
    features?.close();
    ranking?.close();
    experiments?.close();
    await bus?.nc.close();
    await Promise.all(services.map((s) => s.stop()));
    await nats?.dispose();
    storeFile?.dispose();
  });

  test('ForgetUser erases the shopper everywhere within 30 s, says so without the id, and is idempotent', async () => {
    const now = Date.now() - 10 * 60_000;
    // Event ids that embed the user id, as many producers make them: they must go too.
    const event = (userId: string, k: number, itemId: string, type: string) => ({
      eventId: `e-${userId}-${k}`,
      type,
      userId,
      sessionId: `s-${userId}`,
      itemId,
      occurredAt: new Date(now + k * 1000),
    });
    const events = [
      event(FORGOTTEN, 1, 'only-theirs-1', 'view'),
      event(FORGOTTEN, 2, 'only-theirs-2', 'view'),
      event(FORGOTTEN, 3, 'shared', 'add_to_cart'),
      event(FORGOTTEN, 4, 'shared', 'purchase'),
      event(OTHER, 1, 'shared', 'view'),
      event(OTHER, 2, 'only-theirs-1', 'view'),
    ];
    const tracked = await ingest.track(ingestV1.TrackRequest.fromPartial({ events }));
    expect(tracked.rejected).toEqual([]);
    // Rejected input that names the shopper goes to the DLQ (its raw copy stays in CLICKSTREAM): an event
    // with an unknown field, and text that is not JSON at all (whose parse error quotes it).
    const dlqBefore = (await bus.jsm.streams.info(Streams.DLQ.name)).state.messages;
    const json = new TextEncoder();
    await bus.js.publish(
      Subjects.clickstream('view'),
      json.encode(JSON.stringify({ ...event(FORGOTTEN, 9, 'x', 'view'), colour: 'red' })),
    );
    await bus.js.publish(Subjects.clickstream('view'), json.encode(`xx{"user_id": "${FORGOTTEN}", "event_id": "e-9"`));
    await eventually(async () => (await bus.jsm.streams.info(Streams.DLQ.name)).state.messages >= dlqBefore + 2, {
      what: "the shopper's rejected events dead-lettered",
      timeoutMs: 30_000,
    });
    await eventually(
      async () =>
        (await features.getUserFeatures({ tenant: '', userIds: [FORGOTTEN], recentLimit: 10 })).users[0]?.known,
      { what: "the shopper's features", timeoutMs: 30_000 },
    );
    await eventually(() => consumerCaughtUp(bus.jsm, 'EVENTS', 'feature'), { what: 'feature caught up' });
    const coVisits = async (itemId: string) =>
      (await features.getItemFeatures({ tenant: '', itemIds: [itemId], coVisitLimit: 10 })).items[0]?.coVisited.map(
        (c) => c.itemId,
      ) ?? [];
    expect(await coVisits('only-theirs-2')).toContain('only-theirs-1');
    // What ranking served the shopper is stored too (RANKING, with their user id), and, served in an
    // experiment, joined by the experiment service (its store, with their unit).
    await experiments.create({
      experiment: experimentV1.Experiment.fromPartial({
        id: 'forget',
        surface: rankingV1.Surface.SURFACE_RECOMMEND,
        design: experimentV1.Design.DESIGN_AB,
        arms: [{ name: 'a' }, { name: 'b' }],
      }),
    });
    const servedBefore = (await bus.jsm.streams.info(Streams.RANKING.name)).state.messages;
    await eventually(
      async () => {
        await ranking.recommend(rankingV1.RecommendRequest.fromPartial({ userId: FORGOTTEN, limit: 3 }));
        const { result } = await experiments.getResults({ tenant: '', id: 'forget' });
        return (result?.arms ?? []).some((arm) => arm.units > 0);
      },
      { what: 'the impression stored and joined in the experiment', timeoutMs: 30_000 },
    );
    expect((await bus.jsm.streams.info(Streams.RANKING.name)).state.messages).toBeGreaterThan(servedBefore);

    // The search below can find the id: before the request it is in both stores (and in no log).
    await eventually(
      () =>
        filesContaining(dirname(storeFile.path), FORGOTTEN).length > 0 &&
        filesContaining(nats.storeDir, FORGOTTEN).length > 0,
      { what: 'the shopper on disk before the request' },
    );
    expect(services.filter((s) => JSON.stringify(s.logs).includes(FORGOTTEN))).toEqual([]);

    const forgotten: privacyV1.UserForgotten[] = [];
    const rawForgotten: string[] = [];
    const sub = bus.nc.subscribe(Subjects.privacyForgotten, {
      callback: (_err, m) => {
        rawForgotten.push(Buffer.from(m.data).toString('latin1'));
        forgotten.push(privacyV1.UserForgotten.decode(m.data));
      },
    });
    const started = Date.now();
    const { requestId } = await ingest.forgetUser({ tenant: '', userId: FORGOTTEN });
    const owners = ['ingest', 'feature', 'churn-prediction', 'ranking', 'experiment'];
    await eventually(() => owners.every((o) => forgotten.some((f) => f.owner === o && f.requestId === requestId)), {
      what: 'every owner forgotten',
      timeoutMs: 30_000,
    });
    // Nothing of the shopper is left on disk or in a log.
    const leftovers = await eventually(
      () => {
        const found = [
          ...filesContaining(dirname(storeFile.path), FORGOTTEN),
          ...filesContaining(nats.storeDir, FORGOTTEN),
          ...services.filter((s) => JSON.stringify(s.logs).includes(FORGOTTEN)).map((s) => `log of ${s.name}`),
        ];
        return found.length === 0 ? found : false;
      },
      { what: 'no copy of the user id left', timeoutMs: Math.max(1000, 30_000 - (Date.now() - started)) },
    ).catch(() => [
      ...filesContaining(dirname(storeFile.path), FORGOTTEN),
      ...filesContaining(nats.storeDir, FORGOTTEN),
    ]);
    expect(leftovers).toEqual([]);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(rawForgotten.some((r) => r.includes(FORGOTTEN))).toBe(false);
    // 4 stored events and their raw and normalized messages (the dead letters go with ingest's or feature's
    // erasure, whichever takes them from the shared index first: the search above finds none left).
    expect(forgotten.find((f) => f.owner === 'ingest')?.records).toBeGreaterThanOrEqual(4 + 8);
    // The experiment service deleted the stored request(s); its results are counts without the user.
    expect(forgotten.find((f) => f.owner === 'experiment' && f.requestId === requestId)?.records).toBeGreaterThan(0);
    const { result } = await experiments.getResults({ tenant: '', id: 'forget' });
    expect((result?.arms ?? []).reduce((n, arm) => n + Number(arm.units), 0)).toBe(0);

    // Features: the shopper is unknown, their co-visits are taken back, the other shopper is untouched.
    const after = await features.getUserFeatures({ tenant: '', userIds: [FORGOTTEN, OTHER], recentLimit: 10 });
    expect(after.users.map((u) => u.known)).toEqual([false, true]);
    expect(await coVisits('only-theirs-2')).not.toContain('only-theirs-1');
    expect(await coVisits('shared')).toContain('only-theirs-1');

    // Idempotent: a second request erases nothing and still completes.
    const again = await ingest.forgetUser({ tenant: '', userId: FORGOTTEN });
    await eventually(
      () => owners.every((o) => forgotten.some((f) => f.owner === o && f.requestId === again.requestId)),
      { what: 'the repeated request completes', timeoutMs: 30_000 },
    );
    expect(forgotten.filter((f) => f.requestId === again.requestId).map((f) => Number(f.records))).toEqual([
      0, 0, 0, 0, 0,
    ]);
    sub.unsubscribe();

    // In flight, or replayed: events of the shopper from before the request that arrive after it (one sent
    // to ingest again, one already normalized on EVENTS) are dropped and erased, not stored or applied.
    await ingest.track(ingestV1.TrackRequest.fromPartial({ events: [event(FORGOTTEN, 20, 'only-theirs-1', 'view')] }));
    await bus.js.publish(
      Subjects.events('view'),
      clickstreamV1.Event.encode(
        clickstreamV1.Event.fromPartial({
          ...event(FORGOTTEN, 21, 'only-theirs-2', 'view'),
          tenant: 'default',
          ingestedAt: new Date(now),
        }),
      ).finish(),
      { msgID: `late-${FORGOTTEN}` },
    );
    await eventually(
      async () =>
        (await consumerCaughtUp(bus.jsm, 'CLICKSTREAM', 'ingest-clickstream')) &&
        (await consumerCaughtUp(bus.jsm, 'EVENTS', 'feature')),
      { what: 'the late events consumed' },
    );
    const late = await features.getUserFeatures({ tenant: '', userIds: [FORGOTTEN], recentLimit: 10 });
    expect(late.users[0]?.known).toBe(false);
    expect(await coVisits('only-theirs-2')).not.toContain('only-theirs-1');
    const lateLeftovers = await eventually(
      () => {
        const found = [
          ...filesContaining(dirname(storeFile.path), FORGOTTEN),
          ...filesContaining(nats.storeDir, FORGOTTEN),
        ];
        return found.length === 0 ? found : false;
      },
      { what: 'no copy of the late events left', timeoutMs: 10_000 },
    ).catch(() => [
      ...filesContaining(dirname(storeFile.path), FORGOTTEN),
      ...filesContaining(nats.storeDir, FORGOTTEN),
    ]);
    expect(lateLeftovers).toEqual([]);

    // A producer may publish the request directly, as JSON, on its tenant's subject.
    const h = headers();
    h.set(Headers.contentType, ContentTypes.json);
    await bus.js.publish(
      Subjects.privacyForget('default'),
      new TextEncoder().encode(JSON.stringify({ tenant: 'default', userId: OTHER, requestId: 'direct-1' })),
      { headers: h },
    );
    await eventually(
      async () =>
        (await features.getUserFeatures({ tenant: '', userIds: [OTHER], recentLimit: 1 })).users[0]?.known === false,
      { what: 'the directly requested shopper forgotten', timeoutMs: 30_000 },
    );
  });
});
