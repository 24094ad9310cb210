import { RANKER_DIM, RANKER_FEATURES, rankerFeatures } from '@aisle/ml';
import type { Candidate } from './candidates';
import { FeatureMatrixPool, featurize, namedFeatures, userSignals } from './featurize';
import { inCategory, passesFilters } from './filters';
import { reasonsFor } from './reasons';
import { NO_FILTERS, type Filters } from './requests';
import { applyRules, type Scored } from './rules';
import { HEURISTIC_VERSION, personalization, PERSONALIZATION_WEIGHT, scoreRows } from './score';
import { servedEvent } from './served';
import { catalog, context, profile } from './testing.fixture';

const cand = (itemId: string, extra: Partial<Candidate> = {}): Candidate => ({
  itemId,
  sources: ['test'],
  covisScore: 0,
  ...extra,
});

describe('filters', () => {
  const c = catalog();
  const none = new Set<string>();
  test('category prefixes match whole path segments only', () => {
    expect(inCategory('Beauty > Bath', 'Beauty')).toBe(true);
    expect(inCategory('Beauty > Bath', 'Beauty > Bath')).toBe(true);
    expect(inCategory('Beauty Tools > Brushes', 'Beauty')).toBe(false);
  });
  test('price, stock, category, exclusions and purchases', () => {
    const f = { ...NO_FILTERS, minPrice: 5, maxPrice: 30, inStockOnly: true, categories: ['Beauty'] };
    const ok = (
      id: string,
      filters: Filters = f,
      user = undefined as ReturnType<typeof profile> | undefined,
      ex = none,
    ) => passesFilters(c.get(id), filters, user, ex);
    // sponge is too cheap, serum out of stock, glue in another category.
    expect(['soap', 'bomb', 'sponge', 'serum', 'toner', 'glue'].filter((id) => ok(id))).toEqual([
      'soap',
      'bomb',
      'toner',
    ]);
    expect(ok('missing', NO_FILTERS)).toBe(false);
    expect(ok('soap', NO_FILTERS, undefined, new Set(['soap']))).toBe(false);
    const buyer = profile('u', [], { purchased: new Set(['soap']) });
    expect(ok('soap', { ...NO_FILTERS, excludePurchased: true }, buyer)).toBe(false);
    expect(ok('soap', NO_FILTERS, buyer)).toBe(true);
  });
});

describe('featurization', () => {
  const c = catalog();
  const user = profile('u', ['glue', 'soap'], {
    affinity: [
      { category: 'Beauty', score: 10 },
      { category: 'Beauty > Bath', score: 4 },
      { category: 'Home > Tools', score: 2 },
    ],
    price: { mean: 8, std: 3 },
  });
  test('rows equal the shared rankerFeatures of what the candidate, item, stats and user say', () => {
    const signals = userSignals(user, c);
    expect(signals.lastCategory).toBe('Beauty > Bath');
    // Relative to the strongest subcategory ("Beauty > Bath"), not the top-level category.
    expect(signals.affinity.get('Home > Tools')).toBeCloseTo(0.5);
    const cands = new Map([
      ['bomb', cand('bomb', { seqScore: 2, seqRank: 0, covisScore: 3, covisRank: 1 })],
      ['hammer', cand('hammer', { textScore: 0.5, lexical: 0.7 })],
      ['nowhere', cand('nowhere')],
    ]);
    const stats = new Map([['bomb', { popularity7d: 12, ctr: 0.1, conversionRate: 0.03 }]]);
    const m = new Float32Array(3 * RANKER_DIM);
    const ids = ['bomb', 'hammer', 'nowhere'];
    featurize(
      ids,
      ids.map((id) => c.get(id)),
      (id) => cands.get(id)!,
      { stats: (id) => stats.get(id) },
      signals,
      m,
    );
    const expected = [
      rankerFeatures({
        seqScore: 2,
        seqRank: 0,
        covisScore: 3,
        covisRank: 1,
        popularity: 12,
        ctr: 0.1,
        conversionRate: 0.03,
        categoryAffinity: 1,
        price: 7,
        userPriceMean: 8,
        userPriceStd: 3,
        historyLength: 2,
        sameCategoryAsLast: true,
      }),
      rankerFeatures({
        covisScore: 0,
        textScore: 0.5,
        lexicalScore: 0.7,
        categoryAffinity: 0.5,
        price: 25,
        userPriceMean: 8,
        userPriceStd: 3,
        historyLength: 2,
      }),
      rankerFeatures({ covisScore: 0, userPriceMean: 8, userPriceStd: 3, historyLength: 2 }),
    ];
    expected.forEach((row, i) =>
      expect(Array.from(m.subarray(i * RANKER_DIM, (i + 1) * RANKER_DIM))).toEqual(Array.from(row)),
    );
    expect(Object.keys(namedFeatures(m, 1))).toEqual([...RANKER_FEATURES]);
    expect(namedFeatures(m, 1)['lexical_score']).toBeCloseTo(0.7);
  });
  test('matrices are reused: released buffers come back, big enough', () => {
    const pool = new FeatureMatrixPool();
    const a = pool.acquire(10);
    expect(a.length).toBe(10 * RANKER_DIM);
    pool.release(a);
    const b = pool.acquire(7);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(7 * RANKER_DIM);
    const c2 = pool.acquire(7);
    expect(c2.buffer).not.toBe(a.buffer);
  });
});

describe('scoring', () => {
  test('the learned ranker scores the matrix; its version is reported', async () => {
    const ctx = context();
    const m = new Float32Array(2 * RANKER_DIM);
    const r = await scoreRows(
      ctx,
      { version: 'r3', score: async (_f, rows) => Float32Array.from({ length: rows }, (_, i) => i) },
      m,
      2,
    );
    expect([Array.from(r.scores), r.version]).toEqual([[0, 1], 'ranker:r3']);
    expect(ctx.degradation.degraded).toBe(false);
  });
  test('a failing ranker (or a wrong number of scores) falls back to the heuristic, flagged', async () => {
    const m = new Float32Array(2 * RANKER_DIM);
    m.set(rankerFeatures({ covisScore: 0, historyLength: 1 }), 0);
    m.set(rankerFeatures({ covisScore: 5, covisRank: 0, historyLength: 1 }), RANKER_DIM);
    for (const score of [
      async () => {
        throw new Error('onnx failed');
      },
      async () => new Float32Array(5),
    ]) {
      const ctx = context();
      const r = await scoreRows(ctx, { version: 'r3', score }, m, 2);
      expect(r.version).toBe(HEURISTIC_VERSION);
      expect(r.scores[1]).toBeGreaterThan(r.scores[0] as number);
      expect(ctx.degradation.reasons[0]).toMatch(/^ranker:/);
    }
  });
  test('search: personalization is bounded, so it only reorders near-ties in relevance', () => {
    expect(personalization(0)).toBe(0);
    expect(personalization(2)).toBeGreaterThan(personalization(-2));
    expect(Math.abs(personalization(50))).toBeLessThanOrEqual(PERSONALIZATION_WEIGHT);
    expect(Math.abs(personalization(-50))).toBeLessThanOrEqual(PERSONALIZATION_WEIGHT);
  });
});

describe('rules', () => {
  const c = catalog();
  const scored = (ids: string[]): Scored[] =>
    ids.map((itemId, row) => ({ itemId, score: 1 - row / 10, item: c.get(itemId), row }));
  test('in-stock items first, then by score', () => {
    const out = applyRules(scored(['serum', 'soap', 'glue']), {}, 3);
    expect(out.map((s) => s.itemId)).toEqual(['soap', 'glue', 'serum']);
  });
  test('at most maxPerCategory of one category in the first ten; the others move down', () => {
    const out = applyRules(scored(['soap', 'bomb', 'salt', 'sponge', 'glue']), {}, 2);
    expect(out.map((s) => s.itemId)).toEqual(['soap', 'bomb', 'glue', 'salt', 'sponge']);
  });
  test('the first `limit` positions are those of the whole order, ties kept in item order', () => {
    // The whole order, spelled out: a stable sort (in stock first, then score), then the diversity window.
    const reference = (items: Scored[], maxPerCategory: number): Scored[] => {
      const sorted = [...items].sort(
        (a, b) => Number(b.item?.inStock ?? true) - Number(a.item?.inStock ?? true) || b.score - a.score,
      );
      const top: Scored[] = [];
      const deferred: Scored[] = [];
      const counts = new Map<string, number>();
      for (const it of sorted) {
        const cat = it.item?.category ?? '';
        if (top.length < 10 && !(cat && (counts.get(cat) ?? 0) >= maxPerCategory)) {
          top.push(it);
          counts.set(cat, (counts.get(cat) ?? 0) + 1);
        } else deferred.push(it);
      }
      return top.concat(deferred);
    };
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let trial = 0; trial < 200; trial++) {
      const n = Math.floor(rand() * 60);
      const items: Scored[] = Array.from({ length: n }, (_, row) => ({
        itemId: `i${row}`,
        // Few distinct scores, so that ties are common.
        score: Math.floor(rand() * 5),
        item:
          rand() < 0.1
            ? undefined
            : {
                itemId: `i${row}`,
                category: `c${Math.floor(rand() * 4)}`,
                brand: '',
                price: 1,
                inStock: rand() < 0.8,
                title: '',
              },
        row,
      }));
      const maxPerCategory = 1 + Math.floor(rand() * 3);
      const limit = Math.floor(rand() * (n + 5));
      const want = reference(items, maxPerCategory)
        .slice(0, limit)
        .map((s) => s.itemId);
      expect(applyRules(items, {}, maxPerCategory, limit).map((s) => s.itemId)).toEqual(want);
      expect(applyRules(items, {}, maxPerCategory).map((s) => s.itemId)).toEqual(
        reference(items, maxPerCategory).map((s) => s.itemId),
      );
    }
  });
  test('context boosts lift a category or a brand', () => {
    const out = applyRules(scored(['soap', 'glue', 'vase']), { boost_brand: 'Oro' }, 3);
    expect(out[0]?.itemId).toBe('vase');
    const out2 = applyRules(scored(['soap', 'glue', 'vase']), { boost_category: 'Home > Tools' }, 3);
    expect(out2[0]?.itemId).toBe('glue');
  });
});

describe('reasons', () => {
  const c = catalog();
  const user = profile('u', ['soap'], { affinity: [{ category: 'Beauty > Bath', score: 3 }] });
  test('say what proposed the item, strongest first', () => {
    expect(reasonsFor(cand('bomb', { terms: ['bath', 'bomb'] }), c.get('bomb'), user, c)).toEqual([
      "matches 'bath', 'bomb'",
      'you often browse Bath',
    ]);
    expect(reasonsFor(cand('bomb', { covisVia: 'soap', seqRank: 3 }), c.get('bomb'), user, c)).toEqual([
      'often viewed with "Lavender Soap"',
      'picked for you from your recent activity',
    ]);
    expect(reasonsFor(cand('glue', { popularIn: 'Home > Tools' }), c.get('glue'), user, c)).toEqual([
      'popular in Tools',
    ]);
    expect(reasonsFor(cand('glue', { popularIn: '' }), c.get('glue'), undefined, c)).toEqual(['popular right now']);
    expect(reasonsFor(cand('glue', { textScore: 0.3 }), c.get('glue'), undefined, c)).toEqual([
      'similar in meaning to your search',
    ]);
    expect(reasonsFor(cand('glue'), c.get('glue'), undefined, c)).toEqual(['matches your request']);
    expect(reasonsFor(cand('x'), undefined, undefined, c)).toEqual(['not in the catalog']);
  });
});

describe('served event', () => {
  test('one impression per response: positions from 1, the request, the versions and the degradation', () => {
    const ctx = context({ surface: 'search', userId: 'u1', query: 'soap', tenant: 'shop' });
    const e = servedEvent(
      ctx,
      {
        items: [
          { itemId: 'a', score: 2, reasons: [], sources: [], features: {}, contributions: {}, rankerScore: 0 },
          { itemId: 'b', score: 1, reasons: [], sources: [], features: {}, contributions: {}, rankerScore: 0 },
        ],
        modelVersion: 'ranker:heuristic',
        degraded: true,
        degradedReasons: ['embedding: down'],
        requestId: 'r9',
      },
      1234,
    );
    expect(e).toEqual({
      requestId: 'r9',
      tenant: 'shop',
      userId: 'u1',
      surface: 'search',
      query: 'soap',
      items: [
        { itemId: 'a', position: 1, score: 2 },
        { itemId: 'b', position: 2, score: 1 },
      ],
      modelVersion: 'ranker:heuristic',
      degraded: true,
      servedAt: 1234,
    });
  });
});
