/** Scores `rows` rows of a row-major feature matrix. */
export type MatrixScorer = (matrix: Float32Array, rows: number) => Promise<ArrayLike<number>>;

/**
 * Per-feature contributions by occlusion: a feature's contribution is the item's score minus its score
 * with that feature at its missing value (0, as absent ranker inputs are written). Exact for the linear
 * heuristic (weight x value); for the learned ranker it is the local effect of removing the feature.
 * Only the given rows are explained, and all their perturbed copies go to the scorer in one batch.
 */
export async function occlusionContributions(
  matrix: Float32Array,
  rows: readonly number[],
  scores: ArrayLike<number>,
  score: MatrixScorer,
  names: readonly string[],
): Promise<Array<Record<string, number>>> {
  const dim = names.length;
  const where: Array<[item: number, feature: number]> = [];
  rows.forEach((row, i) => {
    for (let j = 0; j < dim; j++) if (matrix[row * dim + j] !== 0) where.push([i, j]);
  });
  const out = rows.map(() => Object.fromEntries(names.map((n) => [n, 0])) as Record<string, number>);
  if (where.length === 0) return out;
  const perturbed = new Float32Array(where.length * dim);
  where.forEach(([i, j], k) => {
    const row = rows[i] as number;
    perturbed.set(matrix.subarray(row * dim, (row + 1) * dim), k * dim);
    perturbed[k * dim + j] = 0;
  });
  const without = await score(perturbed, where.length);
  where.forEach(([i, j], k) => {
    const row = rows[i] as number;
    (out[i] as Record<string, number>)[names[j] as string] = (scores[row] as number) - (without[k] as number);
  });
  return out;
}
