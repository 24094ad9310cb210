/**
 * The whole system, every service a separate process on one embedded store: a generated shop published
 * over NATS -> features -> the trainer trains and publishes -> services hot-load -> recommendations,
 * search, re-ranking and churn alerts over gRPC and NATS; then embedding-inference is killed and
 * ranking degrades within its deadline, and recovers.
 */
import { churnV1, embeddingV1, experimentV1, featureV1, rankingV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { startLocalStack, type LocalStack } from '@aisle/local-stack';
import { CoClickSynonyms, onnxScorer, SearchEngine, SEMANTIC_NEIGHBOURS, type SynonymsJson } from '@aisle/ml';
import { createGrpcClient, ModelRegistry } from '@aisle/runtime';
import { eventually, publishShop, runJobProcess, tempSqliteUrl } from '@aisle/testkit';
import { connectTestBus, consumerCaughtUp, readStream } from '../support/bus';

jest.setTimeout(600_000);

const DAY = 86_400_000;
const shop = generateShop({ seed: 21, users: 300, items: 180, days: 60, churnRate: 0.3 });
const holdFrom = shop.end - 4 * DAY;
const published = shop.events.filter((e) => e.occurredAt < holdFrom);
const ITEM_TYPES = new Set(['view', 'add_to_cart', 'purchase']);
// Held-out next item: each user's first item interaction after the published history.
const heldOut = new Map<string, string>();
for (const e of shop.events)
  if (e.occurredAt >= holdFrom && ITEM_TYPES.has(e.type) && !heldOut.has(e.userId)) heldOut.set(e.userId, e.itemId);

describe('the whole system', () => {
  let stack: LocalStack;
  let storeFile: ReturnType<typeof tempSqliteUrl>;
  let bus: Awaited<ReturnType<typeof connectTestBus>>;
  let ranking: ReturnType<typeof createGrpcClient<typeof rankingV1.RankingServiceService>>;
  let features: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;
  let churn: ReturnType<typeof createGrpcClient<typeof churnV1.ChurnServiceService>>;

  beforeAll(async () => {
    storeFile = tempSqliteUrl();
    stack = await startLocalStack({
      storeUrl: storeFile.url,
      ranking: { AISLE_RANKING_DEADLINE: '400ms', AISLE_RANKING_DEPENDENCY_TIMEOUT: '250ms' },
      // Not under test here, and its sampling would only add load next to these tight deadlines.
      console: false,
    });
    const s = stack.services;
    bus = await connectTestBus(stack.nats.url);
    ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${s.ranking.grpcPort}`, {
      deadlineMs: 5000,
    });
    features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${s.feature.grpcPort}`, {
      deadlineMs: 5000,
    });
    churn = createGrpcClient(churnV1.ChurnServiceService, `127.0.0.1:${s.churn.grpcPort}`, { deadlineMs: 10_000 });

    await publishShop(bus.js, shop.items, published);
    await eventually(
      async () =>
        (await bus.jsm.streams.info(Streams.EVENTS.name)).state.messages >= published.length &&
        (await bus.jsm.streams.info(Streams.ITEMS.name)).state.messages >= shop.items.length &&
        (await consumerCaughtUp(bus.jsm, Streams.EVENTS.name, 'feature')),
      {
        what: 'events ingested and applied',
        timeoutMs: 180_000,
      },
    );

    // The system's plumbing is under test, not whether SASRec beats co-visitation on a generated shop
    // (it does not: its planted signal is item-to-item); the trainer's own test covers that gate.
    const trainer = await runJobProcess('trainer', {
      ...stack.env(),
      AISLE_TRAINER_SASREC_EPOCHS: '8',
      AISLE_TRAINER_BEAT_BASELINE: 'false',
    });
    if (trainer.code !== 0)
      throw new Error(`trainer failed: ${trainer.stderr}\n${JSON.stringify(trainer.logs.slice(-5))}`);
    await stack.modelsLoaded();
  });

  afterAll(async () => {
    ranking?.close();
    features?.close();
    churn?.close();
    await bus?.nc.close();
    await stack?.stop();
    storeFile?.dispose();
  });

  test('Recommend hits held-out next items more often than popularity, with reasons and impressions', async () => {
    const users = [...heldOut.keys()].filter((u) => published.some((e) => e.userId === u)).slice(0, 150);
    const popular = (await features.listPopularItems({ tenant: '', category: '', limit: 10 })).items.map(
      (i) => i.itemId,
    );
    let ours = 0;
    let pop = 0;
    let degraded = 0;
    let sample: rankingV1.RecommendResponse | undefined;
    for (const u of users) {
      const r = await ranking.recommend({
        tenant: '',
        userId: u,
        limit: 10,
        filters: undefined,
        context: {},
        explain: false,
        sessionItemIds: [],
      });
      if (r.degraded) {
        degraded++;
        console.log(`degraded answer for ${u}: ${r.degradedReasons.join('; ')}`);
      }
      sample ??= r;
      if (r.items.some((i) => i.itemId === heldOut.get(u))) ours++;
      if (popular.includes(heldOut.get(u) as string)) pop++;
    }
    console.log(
      `Recommend hit rate@10 on ${users.length} held-out next items: ours ${(ours / users.length).toFixed(3)}, popularity ${(pop / users.length).toFixed(3)}`,
    );
    // A dependency late beyond the 250 ms budget on a loaded machine is a correct (degraded) answer, not a
    // failure of what this test judges; a systematic degradation would still fail it.
    expect(degraded).toBeLessThanOrEqual(Math.ceil(users.length * 0.05));
    expect(ours).toBeGreaterThan(pop * 1.5);
    expect(sample?.items).toHaveLength(10);
    expect(sample?.modelVersion).toMatch(/sasrec:.*ranker:/);
    expect(sample?.items.every((i) => i.reasons.length > 0)).toBe(true);
    const impressions = await readStream(bus.jsm, Streams.RANKING.name);
    const served = rankingV1.Served.decode(
      impressions.find((m) => rankingV1.Served.decode(m.data).requestId === sample?.requestId)!.data,
    );
    expect(served.items.map((i) => i.itemId)).toEqual(sample?.items.map((i) => i.itemId));
  });

  test('Search puts items matching the query first; Rank reorders the given items; SimilarItems works', async () => {
    const target = shop.items[7]!;
    const noun = target.title.split(' ').slice(-1)[0]!.toLowerCase();
    const s = await ranking.search({
      tenant: '',
      query: noun,
      userId: '',
      limit: 10,
      filters: undefined,
      explain: true,
    });
    expect(s.items.length).toBeGreaterThan(0);
    const titleOf = (id: string) => shop.items.find((i) => i.itemId === id)?.title.toLowerCase() ?? '';
    expect(titleOf(s.items[0]!.itemId)).toContain(noun);
    expect(s.items[0]!.reasons[0]).toContain(`'${noun}'`);
    expect(Object.keys(s.items[0]!.features)).toContain('lexical_score');

    const user = [...heldOut.keys()][0]!;
    const given = shop.items.slice(20, 45).map((i) => i.itemId);
    const r = await ranking.rank({ tenant: '', userId: user, itemIds: given, explain: false });
    expect(r.items.map((i) => i.itemId).sort()).toEqual([...given].sort());
    expect(r.items.map((i) => i.itemId)).not.toEqual(given);
    const scores = r.items.map((i) => i.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));

    const sim = await ranking.similarItems({
      tenant: '',
      itemId: target.itemId,
      limit: 5,
      filters: undefined,
      explain: false,
    });
    expect(sim.items.length).toBeGreaterThan(0);
    expect(sim.items.map((i) => i.itemId)).not.toContain(target.itemId);
  });

  test('Search serves what the search engine ranks with the published search model, each part explained', async () => {
    // Planted: a query made of one item's title words finds that item first.
    const target = shop.items[11]!;
    const query = target.title.split(' ').slice(-2).join(' ');
    const registry = await ModelRegistry.open(bus.nc);
    const artifact = (await registry.active('default', 'search_ranker'))!;
    const model = await onnxScorer(artifact.onnx, artifact.meta.version);
    const synonymsJson = artifact.sidecar['synonyms'] as SynonymsJson | undefined;
    const embedding = createGrpcClient(embeddingV1.EmbeddingServiceService, `127.0.0.1:${stack.embeddingPort}`, {
      deadlineMs: 5000,
    });
    try {
      // In the test: the same engine over the same catalog, with the neighbours embedding-inference gives.
      const engine = new SearchEngine(
        shop.items.map((i) => ({
          id: i.itemId,
          title: i.title,
          description: i.description,
          brand: i.brand,
          category: i.category,
        })),
      );
      const neighbours = await embedding.retrieve({
        tenant: 'default',
        text: query,
        k: SEMANTIC_NEIGHBOURS,
        excludeItemIds: [],
        index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT,
      });
      const expected = await engine.search(query, model, {
        semantic: new Map(neighbours.items.map((n) => [n.itemId, n.score])),
        synonyms: synonymsJson ? CoClickSynonyms.fromJSON(synonymsJson) : undefined,
      });
      expect(expected.hits[0]?.itemId).toBe(target.itemId);
      // A late embedding answer (250 ms budget on a loaded machine) is a correct, degraded answer without
      // semantic neighbours; this test compares full answers.
      let s: rankingV1.SearchResponse | undefined;
      for (let attempt = 0; attempt < 5 && (!s || s.degraded); attempt++)
        s = await ranking.search({ tenant: '', query, userId: '', limit: 10, filters: undefined, explain: true });
      expect(s?.degraded).toBe(false);
      expect(s?.modelVersion).toContain(`search:${artifact.meta.version}`);
      const inStock = new Set(shop.items.filter((i) => i.inStock).map((i) => i.itemId));
      // Rules may move items (out of stock last, at most 3 of a category in the first ten), but the first
      // in-stock item is the engine's, and every item has the engine's score and parts.
      expect(s?.items[0]?.itemId).toBe(expected.hits.find((h) => inStock.has(h.itemId))?.itemId);
      expect(s?.items).toHaveLength(10);
      for (const item of s?.items ?? []) {
        const hit = expected.hits.find((h) => h.itemId === item.itemId)!;
        expect(item.score).toBeCloseTo(hit.score, 4);
        for (const [feature, part] of Object.entries(hit.parts))
          expect(item.contributions[`search.${feature}`]).toBeCloseTo(part, 4);
        const sum = Object.values(item.contributions).reduce((a, x) => a + x, 0);
        expect(sum).toBeCloseTo(item.score, 4);
      }
      expect(Object.keys(s?.items[0]?.contributions ?? {})).toEqual(
        expect.arrayContaining(['search.bm25f_norm', 'search.bias']),
      );
    } finally {
      embedding.close();
      await model.release();
    }
  });

  test('invalid requests get INVALID_ARGUMENT naming the field', async () => {
    const err = (await ranking
      .recommend({
        tenant: '',
        userId: '',
        limit: 10,
        filters: undefined,
        context: {},
        explain: false,
        sessionItemIds: [],
      })
      .catch((e: unknown) => e)) as { code: number; details: string };
    expect([err.code, err.details]).toEqual([3, 'user_id: required (or session_item_ids for anonymous visitors)']);
    const err2 = (await ranking
      .recommend({
        tenant: '',
        userId: 'u1',
        limit: 10,
        filters: {
          categories: [],
          minPrice: 10,
          maxPrice: 5,
          inStockOnly: false,
          excludePurchased: false,
          excludeItemIds: [],
        },
        context: {},
        explain: false,
        sessionItemIds: [],
      })
      .catch((e: unknown) => e)) as { details: string };
    expect(err2.details).toBe('filters.max_price: must be >= filters.min_price');
  });

  test('churn alerts fire for users who drift away, not for steady ones', async () => {
    await eventually(async () => (await bus.jsm.streams.info(Streams.CHURN.name)).state.messages > 0, {
      what: 'churn alerts',
      timeoutMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const alerts = (await readStream(bus.jsm, Streams.CHURN.name)).map((m) => churnV1.Alert.decode(m.data).userId);
    expect(new Set(alerts).size).toBe(alerts.length);
    const drifting = shop.users.filter((u) => u.churner).map((u) => u.userId);
    const steady = shop.users.filter((u) => !u.churner).map((u) => u.userId);
    const alerted = new Set(alerts);
    const recall = drifting.filter((u) => alerted.has(u)).length / drifting.length;
    const falseAlarms = steady.filter((u) => alerted.has(u)).length / steady.length;
    console.log(
      `churn alerts: ${alerts.length}; drifting users alerted ${(recall * 100).toFixed(0)}%, steady users alerted ${(falseAlarms * 100).toFixed(0)}%`,
    );
    expect(recall).toBeGreaterThan(0.6);
    expect(falseAlarms).toBeLessThan(0.15);
    const page = await churn.listAtRisk({ tenant: '', minRisk: 0, pageSize: 5, pageToken: '' });
    expect(page.scores).toHaveLength(5);
    expect(page.scores.map((s) => s.risk)).toEqual([...page.scores.map((s) => s.risk)].sort((a, b) => b - a));
    const next = await churn.listAtRisk({ tenant: '', minRisk: 0, pageSize: 5, pageToken: page.nextPageToken });
    expect(next.scores[0]!.risk).toBeLessThanOrEqual(page.scores[4]!.risk);
    const [p] = (await churn.predict({ tenant: '', userIds: [drifting[0]!] })).scores;
    expect(p?.known).toBe(true);
    expect(p?.topFactors.length).toBe(3);
  });

  test('an interleaving experiment between two ranker versions: served with teams, clicks joined, promoted in one call', async () => {
    const experiments = createGrpcClient(
      experimentV1.ExperimentServiceService,
      `127.0.0.1:${stack.services.experiment.grpcPort}`,
      { deadlineMs: 10_000 },
    );
    const registry = await ModelRegistry.open(bus.nc);
    try {
      // A second stored version of the ranker (the active one's artifact under a new name).
      const active = (await registry.active('default', 'ranker'))!;
      const candidate = `${active.meta.version}-b`;
      await registry.storeVersion({
        tenant: 'default',
        name: 'ranker',
        version: candidate,
        onnx: active.onnx,
        sidecar: active.sidecar,
        meta: { metrics: active.meta.metrics, signature: active.meta.signature },
      });
      await experiments.create({
        experiment: experimentV1.Experiment.fromPartial({
          id: 'ranker-b',
          surface: rankingV1.Surface.SURFACE_RECOMMEND,
          design: experimentV1.Design.DESIGN_INTERLEAVING,
          arms: [{ name: 'active' }, { name: 'candidate', models: { ranker: candidate } }],
        }),
      });
      const status = async () =>
        (await (await fetch(`http://127.0.0.1:${stack.services.ranking.metricsPort}/status`)).json()) as {
          experiments: string[];
          tenants: Record<string, { experimentRankers: string[] }>;
        };
      await eventually(async () => (await status()).tenants['default']?.experimentRankers.includes(candidate), {
        what: 'ranking loaded the pinned version',
        timeoutMs: 30_000,
      });

      // Shoppers click the first item of what they were shown, naming the request.
      const users = [...heldOut.keys()].slice(0, 60);
      const requestIds: string[] = [];
      for (const [k, u] of users.entries()) {
        const r = await ranking.recommend({
          tenant: '',
          userId: u,
          limit: 10,
          filters: undefined,
          context: {},
          explain: false,
          sessionItemIds: [],
        });
        expect(r.degraded).toBe(false);
        expect(r.modelVersion).toMatch(/^active=.*;candidate=/);
        requestIds.push(r.requestId);
        const click = {
          event_id: `exp-click-${k}`,
          type: 'click',
          user_id: u,
          item_id: r.items[0]!.itemId,
          occurred_at: new Date().toISOString(),
          request_id: r.requestId,
          position: 1,
        };
        await bus.js.publish(Subjects.clickstream('click'), new TextEncoder().encode(JSON.stringify(click)));
      }
      const served = (await readStream(bus.jsm, Streams.RANKING.name))
        .map((m) => rankingV1.Served.decode(m.data))
        .filter((x) => requestIds.includes(x.requestId));
      expect(served).toHaveLength(users.length);
      for (const x of served) {
        expect(x.experiment).toMatchObject({ experimentId: 'ranker-b', interleaved: true });
        expect(x.experiment?.runs.map((r) => [r.arm, r.failed])).toEqual([
          ['active', false],
          ['candidate', false],
        ]);
        expect(new Set(x.items.map((i) => i.team))).toEqual(new Set(['active', 'candidate']));
      }

      // Every click is credited to the team of its item: one decided request each.
      const result = await eventually(
        async () => {
          const { result } = await experiments.getResults({ tenant: '', id: 'ranker-b' });
          const c = result?.interleaving?.clicks;
          return c && c.winsA + c.winsB === users.length ? result : undefined;
        },
        { what: 'clicks joined to the experiment', timeoutMs: 60_000 },
      );
      expect(result.interleaving?.requests).toBe(users.length);
      expect(result.interleaving?.clicks?.ties).toBe(0);
      expect(result.arms.reduce((n, a) => n + a.clicks, 0)).toBe(users.length);
      const p = result.interleaving?.clicks?.preference;
      expect(p!.lower).toBeLessThanOrEqual(p!.value);
      expect(p!.upper).toBeGreaterThanOrEqual(p!.value);

      // Promotion after the experiment is one call: the candidate becomes active, the experiment stops.
      const promoted = await experiments.promote({ tenant: '', id: 'ranker-b', arm: 'candidate', force: true });
      expect(promoted.activated).toEqual({ ranker: candidate });
      expect(promoted.experiment?.stopReason).toBe("promoted arm 'candidate'");
      await eventually(
        () =>
          stack.services.ranking.logs.some(
            (l) => l['msg'] === 'model active' && l['model'] === 'ranker' && l['version'] === candidate,
          ),
        { what: 'ranking hot-loaded the promoted version', timeoutMs: 30_000 },
      );
      // Stopped: requests leave the experiment and the promoted version serves them.
      await eventually(
        async () =>
          (
            await ranking.recommend({
              tenant: '',
              userId: users[0]!,
              limit: 10,
              filters: undefined,
              context: {},
              explain: false,
              sessionItemIds: [],
            })
          ).modelVersion.includes(`ranker:${candidate}`),
        { what: 'the promoted version serving outside the experiment', timeoutMs: 30_000 },
      );
    } finally {
      experiments.close();
    }
  });

  test('embedding-inference killed: Recommend answers within its deadline, degraded, and recovers', async () => {
    const user = [...heldOut.keys()][1]!;
    // A session no earlier request had: its sequence retrieval is not cached, it must ask embedding-inference.
    const session = [shop.items[3]!.itemId, shop.items[11]!.itemId, shop.items[5]!.itemId];
    stack.services.embedding.kill('SIGKILL');
    await stack.services.embedding.exited;
    const t0 = performance.now();
    const r = await ranking.recommend({
      tenant: '',
      userId: user,
      limit: 10,
      filters: undefined,
      context: {},
      explain: false,
      sessionItemIds: session,
    });
    const ms = performance.now() - t0;
    expect(r.degraded).toBe(true);
    expect(r.degradedReasons.join(' ')).toContain('embedding');
    expect(r.items.length).toBe(10);
    expect(ms).toBeLessThan(600);
    await stack.restartEmbedding();
    await eventually(
      async () =>
        !(
          await ranking.recommend({
            tenant: '',
            userId: user,
            limit: 10,
            filters: undefined,
            context: {},
            explain: false,
            sessionItemIds: session,
          })
        ).degraded,
      { what: 'recovery', timeoutMs: 60_000 },
    );
  });
});
