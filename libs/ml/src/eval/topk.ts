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
