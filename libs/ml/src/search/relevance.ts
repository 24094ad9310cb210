/**
 * Graded relevance metrics for search (the crowdflower-search protocol): NDCG@k with linear gain and
 * log2 discount, the ideal DCG from the query's judged items, unjudged items gain 0.
 */
export function ndcgAt(ranked: readonly string[], judged: ReadonlyMap<string, number>, k = 10): number {
  let dcg = 0;
  for (let r = 0; r < Math.min(k, ranked.length); r++) dcg += (judged.get(ranked[r] as string) ?? 0) / Math.log2(r + 2);
  const ideal = [...judged.values()].sort((a, b) => b - a).slice(0, k);
  const idcg = ideal.reduce((a, g, r) => a + g / Math.log2(r + 2), 0);
  return idcg > 0 ? dcg / idcg : 0;
}

/** Indices of the k highest scores, best first (ties: lower index first). */
export function topDocs(scores: ArrayLike<number>, k: number): number[] {
  const heap: number[] = [];
  const better = (a: number, b: number) =>
    (scores[a] as number) > (scores[b] as number) || ((scores[a] as number) === (scores[b] as number) && a < b);
  for (let i = 0; i < scores.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      if (heap.length === k) heap.sort((a, b) => (better(a, b) ? -1 : 1));
    } else if (better(i, heap[k - 1] as number)) {
      let p = k - 1;
      while (p > 0 && better(i, heap[p - 1] as number)) p--;
      heap.splice(p, 0, i);
      heap.pop();
    }
  }
  if (heap.length < k) heap.sort((a, b) => (better(a, b) ? -1 : 1));
  return heap;
}
