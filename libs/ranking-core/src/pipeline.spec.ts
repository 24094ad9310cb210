import { DeadlineExceededError, InvalidArgumentError } from '@aisle/contracts';
import { LinearScorer, localScorer, RANKER_DIM } from '@aisle/ml';
import { RequestExpiredError } from './context';
import { CollectedImpressions, rankerFrom, sequenceRetrievalFrom, textRetrievalFrom } from './memory';
import { RankingPipeline, type PipelinePorts } from './pipeline';
import type { CallBudget, Retrieved } from './ports';
import { NO_FILTERS, type RankingResult } from './requests';
import { applyRules } from './rules';
import { PERSONALIZATION_WEIGHT } from './score';
import { CATALOG_SEARCH_MODEL, searchSignals } from './sources/search';
import { hung, world } from './testing.fixture';

function setup(overrides: Partial<PipelinePorts> = {}) {
  const w = world();
  const impressions = new CollectedImpressions();
  const seqCalls: Array<{ history: readonly string[]; k: number; exclude: readonly string[] }> = [];
  const ports: PipelinePorts = {
    catalog: w.catalog,
    search: w.catalog.engine,
    userContext: w.userContext,
    coVisitation: w.coVisitation,
    itemStats: w.stats,
    popularity: w.stats,
    sequenceRetrieval: sequenceRetrievalFrom(async (history, k, exclude) => {
      seqCalls.push({ history, k, exclude });
      return {
        items: [
          { itemId: 'candle', score: 3 },
          { itemId: 'salt', score: 2 },
          { itemId: 'glue', score: 1 },
        ],
        version: 's1',
      };
    }, 'embedding'),
    textRetrieval: textRetrievalFrom(
      async (text) => ({
        items: text.includes('Soap') ? [{ itemId: 'bomb', score: 0.8 }] : [{ itemId: 'vase', score: 0.5 }],
        version: 't1',
      }),
      'embedding',
    ),
    impressions,
    ...overrides,
  };
  const pipeline = new RankingPipeline(ports, { tenant: 'shop', maxPerCategory: 3 });
  return { pipeline, impressions, seqCalls, world: w };
}

const recommend = { userId: 'ann', limit: 10, filters: NO_FILTERS, context: {}, explain: false, sessionItemIds: [] };
const ids = (r: RankingResult) => r.items.map((i) => i.itemId);

describe('RankingPipeline over in-memory ports', () => {
  test('Recommend: sequence, co-visits of recent items and popularity, ranked, with reasons and an impression', async () => {
    const { pipeline, impressions, seqCalls } = setup();
    const r = await pipeline.recommend({ ...recommend, filters: { ...NO_FILTERS, excludePurchased: true } });
    expect(r.degraded).toBe(false);
    expect(r.modelVersion).toBe('sasrec:s1,ranker:heuristic');
    expect(seqCalls).toEqual([{ history: ['toner', 'soap'], k: 100, exclude: ['soap'] }]);
    // soap was bought (excluded); serum is out of stock (last); bomb co-visited with both recent items.
    expect(ids(r)).not.toContain('soap');
    expect(ids(r)[ids(r).length - 1]).toBe('serum');
    const bomb = r.items.find((i) => i.itemId === 'bomb');
    expect(bomb?.sources).toEqual(expect.arrayContaining(['co_visit', 'category_popularity']));
    expect(bomb?.reasons[0]).toBe('often viewed with "Lavender Soap"');
    expect(r.items.find((i) => i.itemId === 'candle')?.reasons).toContain('picked for you from your recent activity');
    expect(impressions.events).toHaveLength(1);
    expect(impressions.events[0]).toMatchObject({
      requestId: r.requestId,
      tenant: 'shop',
      userId: 'ann',
      surface: 'recommend',
    });
    expect(impressions.events[0]?.items.map((i) => i.itemId)).toEqual(ids(r));
  });

  test('Recommend for an anonymous visitor: session items seed retrieval and co-visits', async () => {
    const { pipeline, seqCalls } = setup();
    const r = await pipeline.recommend({ ...recommend, userId: '', sessionItemIds: ['glue'] });
    expect(seqCalls[0]?.history).toEqual(['glue']);
    expect(r.items.find((i) => i.itemId === 'hammer')?.reasons[0]).toBe('often viewed with "Gorilla Glue"');
  });

  test('Recommend for an anonymous session with a session model: its order is served, filters and rules still apply', async () => {
    const calls: Array<{ items: readonly string[]; k: number }> = [];
    const sessionModel = {
      version: 'k1',
      next: async (items: readonly string[], k: number) => {
        calls.push({ items, k });
        return {
          items: [
            { itemId: 'hammer', score: 0.9 },
            { itemId: 'serum', score: 0.8 },
            { itemId: 'glue', score: 0.5 },
            { itemId: 'vase', score: 0.1 },
          ],
          version: 'k1',
        };
      },
    };
    const { pipeline, seqCalls } = setup({ sessionModel });
    const r = await pipeline.recommend({
      ...recommend,
      userId: '',
      sessionItemIds: ['glue'],
      filters: { ...NO_FILTERS, excludeItemIds: ['vase'] },
    });
    expect(calls).toEqual([{ items: ['glue'], k: 100 }]);
    expect(seqCalls).toHaveLength(0);
    // Session order, the out-of-stock serum moved last by the rules, vase filtered out.
    expect(ids(r)).toEqual(['hammer', 'glue', 'serum']);
    expect(r.modelVersion).toBe('session:k1,order:session');
    expect(r.items[0]?.reasons).toContain('often viewed next in sessions like this one');
    // A known user keeps the user pipeline; a failing session model falls back to it, flagged.
    expect((await pipeline.recommend({ ...recommend, sessionItemIds: ['glue'] })).modelVersion).not.toContain(
      'session',
    );
    pipeline.setSessionModel({
      version: 'k2',
      dependency: 'session_model',
      next: () => Promise.reject(new Error('gone')),
    });
    const fallback = await pipeline.recommend({ ...recommend, userId: '', sessionItemIds: ['glue'] });
    expect(fallback.degradedReasons).toEqual(['session_model: gone']);
    expect(ids(fallback)).toContain('hammer');
  });

  test("Search: the engine's order and scores, filters after, no category limit, each score part explained", async () => {
    const { pipeline, world: w } = setup();
    const search = { query: ' bath ', userId: '', limit: 10, filters: NO_FILTERS, explain: true };
    const r = await pipeline.search(search);
    const direct = await w.catalog.engine.search('bath', CATALOG_SEARCH_MODEL, {
      semantic: new Map([['vase', 0.5]]),
      signals: searchSignals(w.stats),
    });
    // Anonymous: exactly the engine's ranking and scores. No category limit on Search: the four
    // 'Beauty > Bath' items the query names keep their places (Recommend would move the fourth down).
    expect(ids(r)).toEqual(direct.hits.map((h) => h.itemId).slice(0, 10));
    expect(r.items.map((i) => i.score)).toEqual(direct.hits.map((h) => h.score).slice(0, 10));
    const bath = ids(r).filter((id) => w.catalog.get(id)?.category === 'Beauty > Bath');
    expect(bath).toHaveLength(4);
    expect(ids(r).slice(0, 4)).toEqual(bath);
    const diversified = applyRules(
      direct.hits.map((h, row) => ({ itemId: h.itemId, score: h.score, item: w.catalog.get(h.itemId), row })),
      {},
      3,
    );
    expect(diversified.map((s) => s.itemId).slice(0, 4)).not.toEqual(bath);
    expect(r.items[0]?.reasons[0]).toBe("matches 'bath'");
    expect(r.items[0]?.features['lexical_score']).toBeGreaterThan(0);
    expect(r.items[0]?.features['search.bm25f']).toBeGreaterThan(0);
    for (const item of r.items) {
      const parts = Object.values(item.contributions).reduce((a, x) => a + x, 0);
      expect(parts).toBeCloseTo(item.score, 4);
    }
    expect(r.items[0]?.contributions['search.bm25f_norm']).toBeGreaterThan(0);
    expect(r.items.find((i) => i.itemId === 'vase')?.contributions['search.semantic']).toBeGreaterThan(0);
    expect(r.modelVersion).toBe('text_encoder:t1,search:catalog,ranker:heuristic');

    // Filters apply after the engine; a published search model replaces the catalog-only scorer.
    const inDecor = await pipeline.search({ ...search, filters: { ...NO_FILTERS, categories: ['Home'] } });
    expect(ids(inDecor)).toEqual(['vase']);
    const byTitleLength = localScorer(LinearScorer.of({ title_length_log: 1 }), 's7');
    pipeline.setSearchModel(byTitleLength);
    expect(pipeline.searchModelVersion).toBe('s7');
    const m = await pipeline.search({ ...search, query: 'bath', explain: false });
    expect(m.modelVersion).toBe('text_encoder:t1,search:s7,ranker:heuristic');
    expect(m.items.map((i) => i.score)).toEqual([...m.items.map((i) => i.score)].sort((a, b) => b - a));
    pipeline.setSearchModel(undefined);
    expect(pipeline.searchModelVersion).toBe('catalog');

    // A known user: the ranker nudges within PERSONALIZATION_WEIGHT, explained as `personalization`.
    const known = await pipeline.search({ ...search, userId: 'ann' });
    for (const item of known.items) {
      const base = direct.hits.find((h) => h.itemId === item.itemId)?.score as number;
      expect(Math.abs(item.score - base)).toBeLessThanOrEqual(PERSONALIZATION_WEIGHT);
      expect(item.contributions['personalization']).toBeCloseTo(item.score - base, 5);
    }
  });

  test('Search: Chinese queries find Chinese titles (character n-grams), kept up to date item by item', async () => {
    const { pipeline, world: w } = setup({ textRetrieval: undefined });
    w.catalog.upsert([
      { itemId: 'cn1', title: '不锈钢保温杯 500毫升', category: '家居 > 水杯', brand: '', price: 20, inStock: true },
      { itemId: 'cn2', title: '无线蓝牙耳机', category: '数码 > 耳机', brand: '', price: 99, inStock: true },
    ]);
    const q = (query: string) => pipeline.search({ query, userId: '', limit: 5, filters: NO_FILTERS, explain: false });
    expect(ids(await q('保温杯'))[0]).toBe('cn1');
    expect(ids(await q('蓝牙耳机'))[0]).toBe('cn2');
    w.catalog.upsert([
      { itemId: 'cn1', title: '陶瓷马克杯', category: '家居 > 水杯', brand: '', price: 20, inStock: true },
    ]);
    expect(ids(await q('保温'))).not.toContain('cn1');
    expect(ids(await q('马克杯'))[0]).toBe('cn1');
  });

  test('Rank: exactly the given items (unknown ones too), by score, enriched by the sequence model', async () => {
    const ranker = rankerFrom('r1', async (features, rows) => {
      expect(features.length).toBe(rows * RANKER_DIM);
      // Score = seq_score feature: items the sequence model retrieved come first.
      return Float32Array.from({ length: rows }, (_, i) => features[i * RANKER_DIM] as number);
    });
    const { pipeline, seqCalls } = setup({ ranker });
    const r = await pipeline.rank({ userId: 'ann', itemIds: ['vase', 'nowhere', 'salt', 'candle'], explain: false });
    expect(ids(r)).toEqual(['candle', 'salt', 'vase', 'nowhere']);
    expect(seqCalls[0]?.k).toBe(300);
    expect(r.items.find((i) => i.itemId === 'nowhere')?.reasons).toEqual(['not in the catalog']);
    expect(r.items.every((i) => i.sources[0] === 'request')).toBe(true);
    expect(r.modelVersion).toBe('sasrec:s1,ranker:r1');
  });

  test('Rank: a sequence port that scores items gives every requested item its score and catalog-wide rank', async () => {
    const scored: Array<readonly string[]> = [];
    const sequenceRetrieval = {
      ...sequenceRetrievalFrom(async () => ({ items: [], version: 's2' })),
      scoreItems: async (_history: readonly string[], itemIds: readonly string[]) => {
        scored.push(itemIds);
        return {
          items: itemIds.map((itemId, i) => ({ itemId, score: 10 - i })),
          ranks: itemIds.map((_, i) => 40 + i),
          version: 's2',
        };
      },
    };
    const { pipeline } = setup({ sequenceRetrieval });
    const r = await pipeline.rank({ userId: 'ann', itemIds: ['vase', 'salt', 'candle'], explain: true });
    expect(scored).toEqual([['vase', 'salt', 'candle']]);
    const vase = r.items.find((i) => i.itemId === 'vase');
    expect(vase?.features['seq_score']).toBe(10);
    expect(vase?.features['seq_rank_log']).toBeCloseTo(Math.log1p(40));
    expect(r.items.find((i) => i.itemId === 'candle')?.features['seq_rank_log']).toBeCloseTo(Math.log1p(42));
  });

  test('Rank: co-visitation scores requested items past the 30 neighbours Recommend proposes, and from their own lists', async () => {
    const { pipeline, world: w } = setup();
    // soap (ann's last item) has 40 neighbours; vase is the 36th. candle's own list names toner.
    const many = Array.from({ length: 40 }, (_, i) => ({ itemId: i === 35 ? 'vase' : `x${i}`, score: 100 - i }));
    w.coVisitation.lists.set('soap', many);
    w.coVisitation.lists.set('candle', [{ itemId: 'toner', score: 3 }]);
    const r = await pipeline.rank({ userId: 'ann', itemIds: ['vase', 'candle', 'glue'], explain: true });
    const covis = (id: string) => r.items.find((i) => i.itemId === id)?.features['covis_score_log'];
    // soap is the most recent seed (weight 1), toner the second (1/2).
    expect(covis('vase')).toBeCloseTo(Math.log1p(65));
    expect(covis('candle')).toBeCloseTo(Math.log1p(1.5));
    expect(covis('glue')).toBe(0);
    // Recommend proposes (and scores with) each seed's first 30 only: vase comes from popularity there.
    const rec = await pipeline.recommend({ ...recommend, explain: true });
    expect(rec.items.find((i) => i.itemId === 'vase')?.features['covis_score_log']).toBe(0);
  });

  test('SimilarItems: co-visits, text neighbours and the category, never the item itself', async () => {
    const { pipeline } = setup();
    const r = await pipeline.similarItems({ itemId: 'soap', limit: 5, filters: NO_FILTERS, explain: false });
    expect(ids(r)).not.toContain('soap');
    expect(ids(r)[0]).toBe('bomb');
    expect(r.items[0]?.sources).toEqual(expect.arrayContaining(['co_visit', 'semantic', 'category_popularity']));
  });

  test('a hot-swapped ranker serves the next request; a failing one falls back to the heuristic, flagged', async () => {
    const { pipeline } = setup();
    pipeline.setRanker(rankerFrom('r2', async () => Promise.reject(new Error('session released'))));
    expect(pipeline.rankerVersion).toBe('r2');
    const r = await pipeline.recommend(recommend);
    expect(r.modelVersion.endsWith('ranker:heuristic')).toBe(true);
    expect(r.degradedReasons).toEqual(['ranker: session released']);
  });

  test('answers in memory (peek) are used without calling the dependency', async () => {
    const w = world();
    const known = await w.userContext.userContext('ann', { coVisitItems: 5, coVisitLimit: 30 });
    const { pipeline } = setup({
      userContext: { dependency: 'feature', peek: (id) => (id === 'ann' ? known : undefined), userContext: hung() },
      sequenceRetrieval: {
        dependency: 'embedding',
        peek: () => ({ items: [{ itemId: 'candle', score: 1 }], version: 's9' }),
        bySequence: hung(),
      },
    });
    const r = await pipeline.recommend(recommend);
    expect([r.degraded, r.modelVersion]).toEqual([false, 'sasrec:s9,ranker:heuristic']);
    expect(r.items.find((i) => i.itemId === 'bomb')?.reasons[0]).toBe('often viewed with "Lavender Soap"');
  });

  test('invalid requests name the field', async () => {
    const { pipeline } = setup();
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as InvalidArgumentError,
      );
    expect((await err(pipeline.recommend({ ...recommend, userId: '' })))?.message).toBe(
      'user_id: required (or session_item_ids for anonymous visitors)',
    );
    expect(
      (await err(pipeline.recommend({ ...recommend, filters: { ...NO_FILTERS, minPrice: 10, maxPrice: 5 } })))?.message,
    ).toBe('filters.max_price: must be >= filters.min_price');
    expect(
      (await err(pipeline.search({ query: '  ', userId: '', limit: 1, filters: NO_FILTERS, explain: false })))?.field,
    ).toBe('query');
    expect((await err(pipeline.rank({ userId: 'u', itemIds: [], explain: false })))?.field).toBe('item_ids');
    expect(
      (await err(pipeline.similarItems({ itemId: '', limit: 1, filters: NO_FILTERS, explain: false })))?.field,
    ).toBe('item_id');
    expect(await err(pipeline.recommend({ ...recommend, limit: 500 }))).toBeInstanceOf(InvalidArgumentError);
  });
});

describe('degradation: every dependency hangs (a stopped process)', () => {
  const budgets: CallBudget[] = [];
  const hungPorts = (): Partial<PipelinePorts> => ({
    userContext: { dependency: 'feature', userContext: hung(budgets) },
    coVisitation: { dependency: 'feature', coVisited: hung(budgets) },
    sequenceRetrieval: { dependency: 'embedding', bySequence: hung<Retrieved>(budgets) },
    textRetrieval: { dependency: 'embedding', byText: hung<Retrieved>(budgets) },
  });

  test.each([100, 300])(
    'every surface answers within a %i ms deadline, degraded, from what is in memory',
    async (ms) => {
      const { pipeline, impressions } = setup(hungPorts());
      const calls: Array<[string, () => Promise<RankingResult>]> = [
        ['recommend', () => pipeline.recommend({ ...recommend, callerDeadline: Date.now() + ms })],
        [
          'search',
          () =>
            pipeline.search({
              query: 'bath',
              userId: 'ann',
              limit: 5,
              filters: NO_FILTERS,
              explain: false,
              callerDeadline: Date.now() + ms,
            }),
        ],
        [
          'rank',
          () =>
            pipeline.rank({
              userId: 'ann',
              itemIds: ['glue', 'vase'],
              explain: false,
              callerDeadline: Date.now() + ms,
            }),
        ],
        [
          'similar',
          () =>
            pipeline.similarItems({
              itemId: 'soap',
              limit: 5,
              filters: NO_FILTERS,
              explain: false,
              callerDeadline: Date.now() + ms,
            }),
        ],
      ];
      // Virtual time: the answer must be there once the clock reaches the deadline, whatever the machine
      // load (the real-time check is the SIGSTOP end-to-end test).
      jest.useFakeTimers({ now: 1_000_000 });
      try {
        for (const [surface, call] of calls) {
          let answer: RankingResult | undefined;
          void call().then((r) => (answer = r));
          await jest.advanceTimersByTimeAsync(ms - 3);
          expect([surface, answer !== undefined]).toEqual([surface, true]);
          expect(answer?.degraded).toBe(true);
          expect(answer?.items.length).toBeGreaterThan(0);
        }
      } finally {
        jest.useRealTimers();
      }
      const recommendResult = impressions.events[0];
      expect(recommendResult?.degraded).toBe(true);
      // Popularity (in memory) still fills Recommend.
      expect(recommendResult?.items.length).toBe(10);
      expect(budgets.length).toBeGreaterThan(0);
      expect(budgets.every((b) => b.signal.aborted)).toBe(true);
    },
  );

  test('stale in-memory statistics still serve, and say so', async () => {
    const w = world();
    w.stats.markStale('feature: item statistics not refreshed for 45 s');
    const { pipeline } = setup({ itemStats: w.stats, popularity: w.stats });
    const r = await pipeline.recommend(recommend);
    expect(r.items).toHaveLength(10);
    expect(r.degradedReasons).toEqual(['item_stats: feature: item statistics not refreshed for 45 s']);
  });

  test('one slow dependency among fast ones degrades only its part', async () => {
    const { pipeline } = setup({ sequenceRetrieval: { dependency: 'embedding', bySequence: hung<Retrieved>() } });
    const r = await pipeline.recommend({ ...recommend, callerDeadline: Date.now() + 100 });
    expect(r.degradedReasons).toHaveLength(1);
    expect(r.degradedReasons[0]).toMatch(/^embedding:/);
    expect(r.items.find((i) => i.itemId === 'bomb')?.reasons[0]).toBe('often viewed with "Lavender Soap"');
  });
});

describe("the caller's deadline between stages", () => {
  test('a request whose deadline passed while it was worked on stops: DEADLINE_EXCEEDED, no answer, no impression', async () => {
    const w = world();
    let now = 1_000_000;
    const impressions = new CollectedImpressions();
    const pipeline = new RankingPipeline(
      {
        catalog: w.catalog,
        // The user's context arrives in time, but the process is then starved past the caller's deadline.
        userContext: {
          userContext: async (userId, opts) => {
            const got = await w.userContext.userContext(userId, opts);
            now += 500;
            return got;
          },
        },
        coVisitation: w.coVisitation,
        itemStats: w.stats,
        popularity: w.stats,
        impressions,
      },
      { tenant: 'shop', clock: () => now },
    );
    const late = pipeline.recommend({ ...recommend, callerDeadline: now + 100 });
    await expect(late).rejects.toBeInstanceOf(RequestExpiredError);
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(impressions.events).toHaveLength(0);
    // In time, the same request is answered.
    const inTime = await pipeline.recommend({ ...recommend, callerDeadline: now + 1000 });
    expect(inTime.items.length).toBeGreaterThan(0);
  });
});

describe('the retention rule (an experiment arm treating users at churn risk)', () => {
  const retained = (risk: () => Promise<number | undefined>, version?: string) => {
    const w = world();
    const ports: PipelinePorts = {
      catalog: w.catalog,
      userContext: w.userContext,
      coVisitation: w.coVisitation,
      itemStats: w.stats,
      popularity: w.stats,
      churnRisk: { dependency: 'churn', version, risk },
    };
    return new RankingPipeline(ports, { tenant: 'shop', maxPerCategory: 10, retention: { boost: 10, threshold: 0.5 } });
  };
  const preferred = (r: RankingResult) =>
    r.items.slice(0, 3).every((i) => ['soap', 'bomb', 'salt', 'sponge', 'toner', 'serum'].includes(i.itemId));

  test('puts a user at risk in front of their preferred categories; leaves the others alone', async () => {
    const base = await setup().pipeline.recommend({ ...recommend, limit: 5 });
    const atRisk = await retained(async () => 0.9).recommend({ ...recommend, limit: 5 });
    expect(atRisk.degraded).toBe(false);
    expect(preferred(atRisk)).toBe(true);
    expect(atRisk.items[0]?.score).toBeGreaterThan(10);
    const safe = await retained(async () => 0.1).recommend({ ...recommend, limit: 5 });
    expect(safe.items.every((i) => i.score < 10)).toBe(true);
    expect(base.items.every((i) => i.score < 10)).toBe(true);
  });

  test('a churn port that names its version (an arm\u2019s pin) reports it in model_version when it answered', async () => {
    expect((await retained(async () => 0.9, 'c1').recommend(recommend)).modelVersion).toMatch(/(^|,)churn:c1(,|$)/);
    expect((await retained(async () => 0.9).recommend(recommend)).modelVersion).not.toMatch(/churn:/);
    expect((await retained(async () => undefined, 'c1').recommend(recommend)).modelVersion).not.toMatch(/churn:/);
  });

  test('a churn service that fails degrades the answer and treats nobody', async () => {
    const r = await retained(async () => {
      throw new Error('connection refused');
    }).recommend({ ...recommend, limit: 5 });
    expect(r.degradedReasons).toEqual([expect.stringMatching(/^churn: connection refused/)]);
    expect(r.items.every((i) => i.score < 10)).toBe(true);
  });
});
