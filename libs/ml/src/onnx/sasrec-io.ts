import type { OrtTensorInput, OrtTensorOutput } from './ort';

/**
 * Feeds and results of the exported SASRec graph (see export-sasrec.ts), shared by every caller so that
 * padding and alignment are done one way: histories right-aligned (last `maxLen` items), exclusions
 * zero-padded, one `k` per batch (the largest asked for).
 */
export function sasrecFeeds(
  histories: ReadonlyArray<readonly number[]>,
  excludes: ReadonlyArray<readonly number[]>,
  k: number,
  maxLen: number,
): Record<string, OrtTensorInput> {
  const rows = histories.map((h) => h.slice(-maxLen));
  const L = Math.max(1, ...rows.map((r) => r.length));
  const X = Math.max(1, ...excludes.map((e) => e.length));
  const ids = new BigInt64Array(rows.length * L);
  rows.forEach((r, b) => r.forEach((v, j) => (ids[b * L + (L - r.length) + j] = BigInt(v))));
  const ex = new BigInt64Array(rows.length * X);
  excludes.forEach((e, b) => e.forEach((v, j) => (ex[b * X + j] = BigInt(v))));
  return {
    item_ids: { type: 'int64', data: ids, dims: [rows.length, L] },
    exclude_ids: { type: 'int64', data: ex, dims: [rows.length, X] },
    k: { type: 'int64', data: BigInt64Array.from([BigInt(k)]), dims: [1] },
  };
}

export interface SasrecRow {
  embedding: Float32Array;
  items: number[];
  scores: number[];
}

export function sasrecResults(
  out: Record<string, OrtTensorOutput>,
  batch: number,
  dim: number,
  ks: readonly number[],
): SasrecRow[] {
  const emb = out['user_embedding']?.data as Float32Array;
  const items = out['items']?.data as BigInt64Array;
  const scores = out['scores']?.data as Float32Array;
  const k = items.length / batch;
  return Array.from({ length: batch }, (_, b) => ({
    embedding: emb.slice(b * dim, (b + 1) * dim),
    items: Array.from(items.subarray(b * k, b * k + Math.min(ks[b] ?? k, k)), Number),
    scores: Array.from(scores.subarray(b * k, b * k + Math.min(ks[b] ?? k, k))),
  }));
}
