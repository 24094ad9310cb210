import { buildNumericDataset } from '../data/sequences';
import { bestF1Threshold, brier, f1At, prAuc, rocAuc } from './classification';
import { mostPop } from './baselines';
import { evaluate, rankFull, rankSampled, topItems } from './evaluate';

test('rankFull excludes earlier items and breaks ties by index', () => {
  const scores = Float32Array.from([0, 5, 9, 5, 1]);
  expect(rankFull(scores, 3, Int32Array.from([2]))).toBe(1); // item 1 ties and has the lower index
  expect(rankFull(scores, 1, Int32Array.from([2]))).toBe(0);
  expect(rankFull(scores, 2, Int32Array.from([2]))).toBe(Number.POSITIVE_INFINITY);
  expect(rankFull(scores, 3, Int32Array.from([2, 2, 1, 4]))).toBe(0); // repeated exclusions count once
  expect(rankSampled(scores, 4, Int32Array.from([1, 3, 4]))).toBe(2.5);
});

test('HR and NDCG follow their definitions', async () => {
  // Two users; MostPop ranks item 1 first (3 occurrences), then 2.
  const d = buildNumericDataset('t', [
    ['a', [3, 1, 2]],
    ['b', [1, 4, 1]],
  ]);
  const m = await evaluate(mostPop(d, 'all'), d, { split: 'test', protocol: { kind: 'full' } });
  // a: history [3,1] excluded -> 2 is first: rank 0. b: target 1 occurred earlier -> excluded -> miss.
  expect(m.hr10).toBe(0.5);
  expect(m.ndcg10).toBeCloseTo(0.5);
  expect(m.users).toBe(2);
});

test('topItems returns the best items, excluded ones skipped', () => {
  expect(topItems(Float32Array.from([9, 1, 7, 3, 7]), 3, Int32Array.from([3]))).toEqual([2, 4, 1]);
});

test('classification metrics', () => {
  expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75);
  expect(rocAuc([1, 1, 1], [0, 1, 0])).toBeCloseTo(0.5);
  expect(prAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo((1 + 2 / 3) / 2);
  expect(f1At([0.9, 0.2, 0.7], [1, 0, 0], 0.5)).toEqual({ f1: 2 / 3, precision: 0.5, recall: 1 });
  expect(bestF1Threshold([0.9, 0.2, 0.7], [1, 0, 0])).toBe(0.9);
  expect(brier([1, 0], [1, 1])).toBe(0.5);
});
