/**
 * Top-k rows of a row-major matrix [n, dim] by inner product with `query`, skipping `exclude`.
 * Used for vector queries and the text index (the sequence index runs inside its ONNX graph).
 */
export function topKInnerProduct(
  matrix: Float32Array,
  dim: number,
  query: Float32Array,
  k: number,
  exclude: ReadonlySet<number> = new Set(),
  skipFirst = false,
): Array<{ index: number; score: number }> {
  const n = matrix.length / dim;
  const best: Array<{ index: number; score: number }> = [];
  for (let i = skipFirst ? 1 : 0; i < n; i++) {
    if (exclude.has(i)) continue;
    let s = 0;
    const o = i * dim;
    for (let j = 0; j < dim; j++) s += (query[j] as number) * (matrix[o + j] as number);
    if (best.length < k) {
      best.push({ index: i, score: s });
      if (best.length === k) best.sort((a, b) => b.score - a.score);
    } else if (s > (best[k - 1] as { score: number }).score) {
      let p = k - 1;
      while (p > 0 && (best[p - 1] as { score: number }).score < s) p--;
      best.splice(p, 0, { index: i, score: s });
      best.pop();
    }
  }
  if (best.length < k) best.sort((a, b) => b.score - a.score);
  return best;
}

/**
 * The `k` highest of `scores[1..]` (index 0 is padding), best first, ties by lower index; with their
 * scores. Selection by a threshold found with quickselect: linear in the number of items.
 */
export function topIndices(scores: Float32Array, k: number): { items: Int32Array; scores: Float32Array } {
  const n = scores.length - 1;
  const kk = Math.max(0, Math.min(k, n));
  if (kk === 0) return { items: new Int32Array(0), scores: new Float32Array(0) };
  const work = scores.slice(1);
  let lo = 0;
  let hi = n - 1;
  const target = kk - 1;
  while (lo < hi) {
    const pivot = work[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((work[i] as number) > pivot) i++;
      while ((work[j] as number) < pivot) j--;
      if (i <= j) {
        const x = work[i] as number;
        work[i] = work[j] as number;
        work[j] = x;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  const threshold = work[target] as number;
  const picked: number[] = [];
  for (let i = 1; i <= n; i++) if ((scores[i] as number) > threshold) picked.push(i);
  for (let i = 1; i <= n && picked.length < kk; i++) if (scores[i] === threshold) picked.push(i);
  picked.sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  return { items: Int32Array.from(picked), scores: Float32Array.from(picked, (i) => scores[i] as number) };
}

/** How many items (index >= 1) score strictly above `score`: the 0-based rank of an item scoring it. */
export function rankOfScore(scores: Float32Array, score: number): number {
  let r = 0;
  for (let i = 1; i < scores.length; i++) if ((scores[i] as number) > score) r++;
  return r;
}
