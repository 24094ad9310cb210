import { mulberry32 } from '../eval/random';
import { SEARCH_DIM, SEARCH_FEATURES, featureRow } from './features';
import { fitLinear, fitTrees, scorerFromJson, type RankingList, type SearchScorer, ScorerFormatError } from './ltr';
import { ndcgAt } from './relevance';

/** Lists whose labels follow title_coverage (and, with a threshold, head_match); other features are noise. */
function plantedLists(n: number, seed: number): RankingList[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const rows: Float32Array[] = [];
    const labels: number[] = [];
    for (let i = 0; i < 40; i++) {
      const cov = rand();
      const head = rand() < 0.3 ? 1 : 0;
      rows.push(
        featureRow({ title_coverage: cov, head_match: head, bm25f_norm: rand(), title_length_log: rand() * 3 }),
      );
      labels.push(cov > 0.7 && head === 1 ? 3 : cov > 0.7 ? 1 : 0);
    }
    return { rows, labels };
  });
}

function meanNdcg(lists: RankingList[], scorer: SearchScorer): number {
  return (
    lists.reduce((a, l) => {
      const ids = l.rows.map((_, i) => String(i));
      const order = ids.map((id, i) => ({ id, s: scorer.score(l.rows[i] as Float32Array) })).sort((x, y) => y.s - x.s);
      return (
        a +
        ndcgAt(
          order.map((o) => o.id),
          new Map(l.labels.map((y, i) => [String(i), y])),
          10,
        )
      );
    }, 0) / lists.length
  );
}

test.each([
  ['linear', (l: RankingList[]) => fitLinear(l, { epochs: 150, learningRate: 0.1 })],
  ['trees', (l: RankingList[]) => fitTrees(l, { trees: 40, minLeaf: 20 })],
])('%s learns a planted relevance signal and generalizes to new lists', (_, fit) => {
  const scorer = fit(plantedLists(60, 1));
  const test = plantedLists(40, 2);
  const learned = meanNdcg(test, scorer);
  const byLength = meanNdcg(test, {
    score: (r: Float32Array) => r[SEARCH_FEATURES.indexOf('title_length_log')] as number,
  } as SearchScorer);
  expect(learned).toBeGreaterThan(0.9);
  expect(byLength).toBeLessThan(0.6);
});

test('a linear scorer learns positive weights for the signal and keeps frozen features at 0', () => {
  const s = fitLinear(plantedLists(60, 3), { epochs: 150, learningRate: 0.1, frozen: ['bm25f_norm'] });
  expect(s.weights[SEARCH_FEATURES.indexOf('title_coverage')]).toBeGreaterThan(0.5);
  expect(s.weights[SEARCH_FEATURES.indexOf('head_match')]).toBeGreaterThan(0.2);
  expect(s.weights[SEARCH_FEATURES.indexOf('bm25f_norm')]).toBe(0);
});

test.each([
  ['linear', () => fitLinear(plantedLists(20, 4), { epochs: 50 })],
  ['trees', () => fitTrees(plantedLists(20, 4), { trees: 10, minLeaf: 20 })],
])('%s: explain() parts sum to the score, and JSON round-trips exactly', (_, fit) => {
  const scorer = fit();
  const copy = scorerFromJson(JSON.parse(JSON.stringify(scorer.toJSON())) as ReturnType<SearchScorer['toJSON']>);
  for (const row of plantedLists(1, 5)[0]?.rows ?? []) {
    const { bias, parts } = scorer.explain(row);
    const sum = bias + Object.values(parts).reduce((a, x) => a + x, 0);
    expect(sum).toBeCloseTo(scorer.score(row), 6);
    expect(copy.score(row)).toBe(scorer.score(row));
  }
});

test('a scorer saved for another feature list is refused', () => {
  const json = fitLinear(plantedLists(5, 6), { epochs: 5 }).toJSON();
  expect(() => scorerFromJson({ ...json, features: [...json.features].reverse() })).toThrow(ScorerFormatError);
  expect(json.features).toHaveLength(SEARCH_DIM);
});
