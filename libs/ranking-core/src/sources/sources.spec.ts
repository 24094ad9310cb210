import { CandidateSet } from '../candidates';
import type { CoVisitationPort, Neighbor, Retrieved } from '../ports';
import { context, hung, world } from '../testing.fixture';
import { addCoVisitCandidates, completedSeedLists, coVisitsOf, recentDistinct } from './co-visitation';
import { addPopularCandidates, popularIn } from './popularity';
import { CATALOG_SEARCH_MODEL, EngineSearchStage } from './search';
import { addSequenceCandidates, retrieveBySequence, retrieveTopBySequence, SEQUENCE_HISTORY } from './sequence';

describe('candidate sources', () => {
  test('sequence: the last 50 items go to the model; scores and ranks land on the candidates', async () => {
    const ctx = context();
    const history = Array.from({ length: 80 }, (_, i) => `h${i}`);
    let sent: readonly string[] = [];
    const got = await retrieveBySequence(
      ctx,
      {
        dependency: 'embedding',
        bySequence: async (h, k, exclude) => {
          sent = h;
          expect([k, exclude]).toEqual([100, ['x']]);
          return {
            items: [
              { itemId: 'a', score: 3 },
              { itemId: 'b', score: 2 },
            ],
            version: 'v7',
          };
        },
      },
      history,
      100,
      ['x'],
    );
    expect(sent).toEqual(history.slice(-SEQUENCE_HISTORY));
    const out = new CandidateSet(new Set(['b']));
    addSequenceCandidates(ctx, out, got);
    expect(out.get('a')).toBeUndefined();
    expect(out.get('b')).toMatchObject({ seqScore: 2, seqRank: 1, sources: ['sequence'] });
    expect(ctx.versions).toEqual(['sasrec:v7']);
    ctx.close();
  });

  test('sequence: without exclusions a surface takes the top of the shared retrieval; with them, its own', async () => {
    const ctx = context();
    const asked: Array<[number, readonly string[]]> = [];
    const port = {
      bySequence: async (_h: readonly string[], k: number, exclude: readonly string[]) => {
        asked.push([k, exclude]);
        return { items: Array.from({ length: k }, (_, i) => ({ itemId: `i${i}`, score: k - i })), version: 'v1' };
      },
    };
    const top = await retrieveTopBySequence(ctx, port, ['a'], 100, [], 300);
    expect(top?.items.map((n) => n.itemId)).toEqual(Array.from({ length: 100 }, (_, i) => `i${i}`));
    await retrieveTopBySequence(ctx, port, ['a'], 100, ['x'], 300);
    expect(asked).toEqual([
      [300, []],
      [100, ['x']],
    ]);
    ctx.close();
  });

  test('sequence: nothing is asked without history or without a model port', async () => {
    const ctx = context();
    const port = { bySequence: jest.fn<Promise<Retrieved>, []>() };
    expect(await retrieveBySequence(ctx, port, [], 10, [])).toBeUndefined();
    expect(await retrieveBySequence(ctx, undefined, ['a'], 10, [])).toBeUndefined();
    expect(port.bySequence).not.toHaveBeenCalled();
    expect(ctx.degradation.degraded).toBe(false);
  });

  test('co-visitation: recent distinct seeds weigh more; each candidate keeps its strongest seed', () => {
    expect(recentDistinct(['a', 'b', 'a', 'c', 'c'], 5)).toEqual(['c', 'a', 'b']);
    const lists = new Map<string, Neighbor[]>([
      [
        'c',
        [
          { itemId: 'x', score: 2 },
          { itemId: 'c', score: 9 },
        ],
      ],
      [
        'a',
        [
          { itemId: 'x', score: 6 },
          { itemId: 'y', score: 1 },
        ],
      ],
    ]);
    const out = new CandidateSet();
    addCoVisitCandidates(out, ['c', 'a'], lists);
    // x: 2/1 + 6/2 = 5, strongest via a (3 > 2); y: 1/2; the seed itself is never proposed.
    expect(out.get('x')).toMatchObject({ covisScore: 5, covisVia: 'a', covisRank: 0, sources: ['co_visit'] });
    expect(out.get('y')).toMatchObject({ covisScore: 0.5, covisVia: 'a', covisRank: 1 });
    expect(out.get('c')).toBeUndefined();
  });

  test('co-visitation for Rank: a seed list that stops before a requested item is completed from its own list', () => {
    const ns = (...pairs: Array<[string, number]>): Neighbor[] => pairs.map(([itemId, score]) => ({ itemId, score }));
    // x names s1 too (already counted from s1's side), y names s1 and s2; z names nobody we know.
    const lists = new Map([
      ['s1', ns(['x', 4])],
      ['s2', ns()],
      ['x', ns(['s1', 9], ['q', 1])],
      ['y', ns(['s2', 3], ['s1', 2])],
      ['z', ns(['q', 5])],
    ]);
    const done = completedSeedLists(['s1', 's2'], ['x', 'y', 'z', 's2'], lists);
    expect(done.get('s1')).toEqual(ns(['x', 4], ['y', 2]));
    expect(done.get('s2')).toEqual(ns(['y', 3]));
    const out = new CandidateSet(new Set(['x', 'y', 'z']));
    addCoVisitCandidates(out, ['s1', 's2'], done);
    // x: 4 from s1; y: 2/1 + 3/2 = 3.5 (s1 the stronger); z has no pair with either seed.
    expect(out.get('x')).toMatchObject({ covisScore: 4, covisRank: 0 });
    expect(out.get('y')).toMatchObject({ covisScore: 3.5, covisRank: 1, covisVia: 's1' });
    expect(out.get('z')).toBeUndefined();
  });

  test('co-visitation: only seeds missing from the user context are fetched; a failure keeps what is known', async () => {
    const asked: string[][] = [];
    const port: CoVisitationPort = {
      dependency: 'feature',
      coVisited: async (ids) => {
        asked.push([...ids]);
        return new Map(ids.map((id) => [id, [{ itemId: `${id}-n`, score: 1 }]]));
      },
    };
    const ctx = context();
    const known = new Map([['a', [{ itemId: 'z', score: 1 }]]]);
    const merged = await coVisitsOf(ctx, port, ['a', 's1'], known, 30);
    expect(asked).toEqual([['s1']]);
    expect([...merged.keys()]).toEqual(['a', 's1']);
    const failing: CoVisitationPort = { dependency: 'feature', coVisited: hung() };
    const short = context({ callerDeadline: Date.now() + 30 });
    expect(await coVisitsOf(short, failing, ['a', 's1'], known, 30)).toBe(known);
    expect(short.degradation.reasons[0]).toMatch(/^feature:/);
    short.close();
  });

  test('popularity: category lists mark the category, the overall list marks none; first source wins', () => {
    const w = world();
    const ctx = context();
    const bath = popularIn(ctx, w.stats, 'Beauty > Bath', 2);
    expect(bath.map((n) => n.itemId)).toEqual(['soap', 'bomb']);
    const out = new CandidateSet();
    addPopularCandidates(out, bath, 'Beauty > Bath');
    addPopularCandidates(out, popularIn(ctx, w.stats, '', 3), '');
    expect(out.get('soap')).toMatchObject({
      popularIn: 'Beauty > Bath',
      sources: ['category_popularity', 'popularity'],
    });
    expect(out.get('salt')).toMatchObject({ popularIn: '', sources: ['popularity'] });
  });

  test('search: the engine ranks lexical and semantic matches; each candidate carries its score and parts', async () => {
    const w = world();
    const ctx = context({ surface: 'search', query: 'bath soap' });
    const neighbours = [
      { itemId: 'soap', score: 0.9 },
      { itemId: 'candle', score: 0.4 },
    ];
    const stage = new EngineSearchStage(
      w.catalog.engine,
      {
        byText: async (text, k) => (
          expect([text, k]).toEqual(['bath soap', 100]),
          { items: neighbours, version: 't1' }
        ),
      },
      undefined,
    );
    const out = new CandidateSet();
    await stage.candidates(ctx, 'bath soap', out);
    // Exactly what the engine ranks with the same neighbours and the catalog-only scorer.
    const direct = await w.catalog.engine.search('bath soap', CATALOG_SEARCH_MODEL, {
      semantic: new Map(neighbours.map((n) => [n.itemId, n.score])),
    });
    expect(out.ids()).toEqual(direct.hits.map((h) => h.itemId));
    expect(out.get('soap')).toMatchObject({
      terms: ['bath', 'soap'],
      textScore: 0.9,
      sources: ['bm25', 'semantic'],
      search: { score: direct.hits[0]?.score, parts: direct.hits[0]?.parts },
    });
    expect(out.get('soap')?.search?.parts.semantic).toBeGreaterThan(0);
    expect(out.get('candle')).toMatchObject({ textScore: 0.4, sources: ['semantic'] });
    expect(ctx.versions).toEqual(['text_encoder:t1', 'search:catalog']);
  });

  test('the search stage still answers lexically when the text model hangs, and without a failing model', async () => {
    const w = world();
    const ctx = context({ surface: 'search', callerDeadline: Date.now() + 40 });
    const failing = { version: 'm1', score: () => Promise.reject(new Error('session closed')) };
    const stage = new EngineSearchStage(
      w.catalog.engine,
      { dependency: 'embedding', byText: hung() },
      undefined,
      failing,
    );
    expect(stage.modelVersion).toBe('m1');
    const out = new CandidateSet();
    await stage.candidates(ctx, 'glue', out);
    expect(out.ids()).toEqual(['glue']);
    expect(ctx.degradation.reasons).toEqual([expect.stringMatching(/^embedding:/), 'search_ranker: session closed']);
    expect(ctx.versions).toEqual(['search:catalog']);
    ctx.close();
  });
});
