import { mulberry32 } from '../eval/random';
import { SEARCH_DIM, SEARCH_FEATURES, type SearchFeature } from './features';
import { topDocs } from './relevance';

/**
 * Learning to rank for Search. Training data are lists: one query's candidates (feature rows) with graded
 * labels (judgements 0..3 in the evaluation; click/purchase grades in production, unclicked = 0).
 *
 * Two scorers behind one interface, both plain TypeScript so that the trainer, the evaluation and
 * ranking's Search run the very same arithmetic, and both explain a score as a sum of per-feature parts:
 * - `LinearScorer`: standardized features, weights fitted with a listwise softmax loss (ListNet).
 * - `TreeScorer`: gradient-boosted regression trees fitted with LambdaMART gradients (Burges 2010);
 *   its parts follow each row's path through each tree (Saabas' attribution).
 */
export interface RankingList {
  rows: readonly Float32Array[];
  labels: readonly number[];
}

export interface SearchScorer {
  readonly kind: 'linear' | 'trees';
  score(row: Float32Array): number;
  /** The score as a bias plus one part per feature (parts that are 0 are left out). */
  explain(row: Float32Array): { bias: number; parts: Partial<Record<SearchFeature, number>> };
  toJSON(): ScorerJson;
}

export type ScorerJson =
  | { kind: 'linear'; features: string[]; mean: number[]; std: number[]; weights: number[]; bias: number }
  | {
      kind: 'trees';
      features: string[];
      base: number;
      trees: Array<{ feature: number[]; threshold: number[]; left: number[]; right: number[]; value: number[] }>;
    };

export class ScorerFormatError extends Error {
  override readonly name = 'ScorerFormatError';
}

function checkFeatures(features: readonly string[]): void {
  if (features.length !== SEARCH_DIM || features.some((f, i) => f !== SEARCH_FEATURES[i]))
    throw new ScorerFormatError(`scorer features [${features.join(', ')}] differ from [${SEARCH_FEATURES.join(', ')}]`);
}

export function scorerFromJson(json: ScorerJson): SearchScorer {
  checkFeatures(json.features);
  switch (json.kind) {
    case 'linear':
      return new LinearScorer(
        Float64Array.from(json.weights),
        json.bias,
        Float64Array.from(json.mean),
        Float64Array.from(json.std),
      );
    case 'trees':
      return new TreeScorer(json.base, json.trees);
  }
}

// ---------------------------------------------------------------------------------------------------
// Linear

export class LinearScorer implements SearchScorer {
  readonly kind = 'linear';

  constructor(
    readonly weights: Float64Array,
    readonly bias = 0,
    readonly mean: Float64Array = new Float64Array(SEARCH_DIM),
    readonly std: Float64Array = new Float64Array(SEARCH_DIM).fill(1),
  ) {}

  /** A scorer from raw (unstandardized) weights per feature name. */
  static of(weights: Partial<Record<SearchFeature, number>>): LinearScorer {
    return new LinearScorer(Float64Array.from(SEARCH_FEATURES, (f) => weights[f] ?? 0));
  }

  score(row: Float32Array): number {
    let s = this.bias;
    for (let j = 0; j < SEARCH_DIM; j++)
      s += ((this.weights[j] as number) * ((row[j] as number) - (this.mean[j] as number))) / (this.std[j] as number);
    return s;
  }

  explain(row: Float32Array): { bias: number; parts: Partial<Record<SearchFeature, number>> } {
    const parts: Partial<Record<SearchFeature, number>> = {};
    let bias = this.bias;
    SEARCH_FEATURES.forEach((f, j) => {
      const w = (this.weights[j] as number) / (this.std[j] as number);
      bias -= w * (this.mean[j] as number);
      const v = w * (row[j] as number);
      if (v !== 0) parts[f] = v;
    });
    return { bias, parts };
  }

  toJSON(): ScorerJson {
    return {
      kind: 'linear',
      features: [...SEARCH_FEATURES],
      mean: [...this.mean],
      std: [...this.std],
      weights: [...this.weights],
      bias: this.bias,
    };
  }
}

export interface LinearFitOptions {
  epochs: number;
  learningRate: number;
  l2: number;
  /** Features held at weight 0 (e.g. ones the training data cannot show, like popularity in judgements). */
  frozen: readonly SearchFeature[];
  /** Lists to stop on: the weights with the best mean NDCG@10 on them are kept (checked every 10 epochs). */
  validation?: readonly RankingList[] | undefined;
}

export const DEFAULT_LINEAR_FIT: LinearFitOptions = { epochs: 300, learningRate: 0.05, l2: 1e-3, frozen: [] };

/** NDCG@k of one list ordered by `score` (ties: list order). */
export function listNdcg(list: RankingList, score: (row: Float32Array) => number, k = 10): number {
  const s = Float32Array.from(list.rows, score);
  const dcg = topDocs(s, k).reduce((a, i, r) => a + Math.max(0, list.labels[i] as number) / Math.log2(r + 2), 0);
  const ideal = [...list.labels].sort((a, b) => b - a).slice(0, k);
  const idcg = ideal.reduce((a, y, r) => a + Math.max(0, y) / Math.log2(r + 2), 0);
  return idcg > 0 ? dcg / idcg : 0;
}

function standardization(lists: readonly RankingList[]): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(SEARCH_DIM);
  const sq = new Float64Array(SEARCH_DIM);
  let n = 0;
  for (const l of lists)
    for (const r of l.rows) {
      n++;
      for (let j = 0; j < SEARCH_DIM; j++) {
        mean[j] = (mean[j] as number) + (r[j] as number);
        sq[j] = (sq[j] as number) + (r[j] as number) ** 2;
      }
    }
  const std = new Float64Array(SEARCH_DIM);
  for (let j = 0; j < SEARCH_DIM; j++) {
    mean[j] = (mean[j] as number) / Math.max(1, n);
    const v = (sq[j] as number) / Math.max(1, n) - (mean[j] as number) ** 2;
    std[j] = v > 1e-12 ? Math.sqrt(v) : 1;
  }
  return { mean, std };
}

/**
 * ListNet: per list, cross-entropy between softmax(scores) and the label distribution (softmax of
 * 2^label - 1 style gains, here gain / sum of gains); full-batch Adam over all lists.
 */
export function fitLinear(lists: readonly RankingList[], opts: Partial<LinearFitOptions> = {}): LinearScorer {
  const o = { ...DEFAULT_LINEAR_FIT, ...opts };
  const usable = lists.filter((l) => l.labels.some((y) => y > 0) && l.rows.length > 1);
  const { mean, std } = standardization(usable);
  const frozen = new Set(o.frozen.map((f) => SEARCH_FEATURES.indexOf(f)));
  const D = SEARCH_DIM;
  // Flat standardized rows and each list's target distribution (gain / sum of gains).
  const offsets: number[] = [0];
  for (const l of usable) offsets.push((offsets[offsets.length - 1] as number) + l.rows.length);
  const n = offsets[offsets.length - 1] as number;
  const Z = new Float64Array(n * D);
  const target = new Float64Array(n);
  usable.forEach((l, li) => {
    const a = offsets[li] as number;
    const gs = l.labels.reduce((s, y) => s + Math.max(0, y), 0);
    l.rows.forEach((r, i) => {
      for (let j = 0; j < D; j++) Z[(a + i) * D + j] = ((r[j] as number) - (mean[j] as number)) / (std[j] as number);
      target[a + i] = Math.max(0, l.labels[i] as number) / gs;
    });
  });
  const w = new Float64Array(D);
  const m = new Float64Array(D);
  const v = new Float64Array(D);
  const s = new Float64Array(n);
  const b1 = 0.9;
  const b2 = 0.999;
  const validation = o.validation?.filter((l) => l.labels.some((y) => y > 0)) ?? [];
  let best = { ndcg: -1, w: new Float64Array(D) };
  const check = () => {
    const scorer = new LinearScorer(w, 0, mean, std);
    const ndcg = validation.reduce((a, l) => a + listNdcg(l, (r) => scorer.score(r)), 0) / validation.length;
    if (ndcg > best.ndcg) best = { ndcg, w: Float64Array.from(w) };
  };
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const grad = new Float64Array(D);
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let j = 0; j < D; j++) x += (Z[i * D + j] as number) * (w[j] as number);
      s[i] = x;
    }
    for (let li = 0; li < usable.length; li++) {
      const a = offsets[li] as number;
      const b = offsets[li + 1] as number;
      let max = -Infinity;
      for (let i = a; i < b; i++) max = Math.max(max, s[i] as number);
      let es = 0;
      for (let i = a; i < b; i++) es += Math.exp((s[i] as number) - max);
      for (let i = a; i < b; i++) {
        const d = Math.exp((s[i] as number) - max) / es - (target[i] as number);
        for (let j = 0; j < D; j++) grad[j] = (grad[j] as number) + d * (Z[i * D + j] as number);
      }
    }
    for (let j = 0; j < D; j++) {
      if (frozen.has(j)) continue;
      const g = (grad[j] as number) / usable.length + o.l2 * (w[j] as number);
      m[j] = b1 * (m[j] as number) + (1 - b1) * g;
      v[j] = b2 * (v[j] as number) + (1 - b2) * g * g;
      const mh = (m[j] as number) / (1 - b1 ** epoch);
      const vh = (v[j] as number) / (1 - b2 ** epoch);
      w[j] = (w[j] as number) - (o.learningRate * mh) / (Math.sqrt(vh) + 1e-8);
    }
    if (validation.length > 0 && (epoch % 10 === 0 || epoch === o.epochs)) check();
  }
  return new LinearScorer(validation.length > 0 ? best.w : w, 0, mean, std);
}

// ---------------------------------------------------------------------------------------------------
// Trees (LambdaMART)

interface Tree {
  /** Per node: split feature (-1 = leaf), threshold (go left when x <= threshold), children, value. */
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
}

export class TreeScorer implements SearchScorer {
  readonly kind = 'trees';

  constructor(
    readonly base: number,
    readonly trees: readonly Tree[],
  ) {}

  score(row: Float32Array): number {
    let s = this.base;
    for (const t of this.trees) {
      let n = 0;
      while ((t.feature[n] as number) >= 0)
        n =
          (row[t.feature[n] as number] as number) <= (t.threshold[n] as number)
            ? (t.left[n] as number)
            : (t.right[n] as number);
      s += t.value[n] as number;
    }
    return s;
  }

  explain(row: Float32Array): { bias: number; parts: Partial<Record<SearchFeature, number>> } {
    const parts: Partial<Record<SearchFeature, number>> = {};
    let bias = this.base;
    for (const t of this.trees) {
      let n = 0;
      bias += t.value[0] as number;
      while ((t.feature[n] as number) >= 0) {
        const f = SEARCH_FEATURES[t.feature[n] as number] as SearchFeature;
        const next =
          (row[t.feature[n] as number] as number) <= (t.threshold[n] as number)
            ? (t.left[n] as number)
            : (t.right[n] as number);
        parts[f] = (parts[f] ?? 0) + (t.value[next] as number) - (t.value[n] as number);
        n = next;
      }
    }
    return { bias, parts };
  }

  toJSON(): ScorerJson {
    return { kind: 'trees', features: [...SEARCH_FEATURES], base: this.base, trees: this.trees.map((t) => ({ ...t })) };
  }
}

export interface TreeFitOptions {
  trees: number;
  depth: number;
  learningRate: number;
  minLeaf: number;
  /** Share of features tried per tree (column subsampling). */
  featureShare: number;
  bins: number;
  seed: number;
  /** NDCG truncation for the lambda weights. */
  k: number;
  frozen: readonly SearchFeature[];
}

export const DEFAULT_TREE_FIT: TreeFitOptions = {
  trees: 150,
  depth: 3,
  learningRate: 0.1,
  minLeaf: 50,
  featureShare: 0.8,
  bins: 32,
  seed: 1,
  k: 10,
  frozen: [],
};

/** Quantile bin edges per feature. */
function binEdges(X: readonly Float32Array[], bins: number): number[][] {
  return SEARCH_FEATURES.map((_, j) => {
    const vals = Float64Array.from(X, (r) => r[j] as number).sort();
    const edges: number[] = [];
    for (let b = 1; b < bins; b++) {
      const v = vals[Math.floor((b * vals.length) / bins)] as number;
      if (edges.length === 0 || v > (edges[edges.length - 1] as number)) edges.push(v);
    }
    return edges;
  });
}

export function fitTrees(lists: readonly RankingList[], opts: Partial<TreeFitOptions> = {}): TreeScorer {
  const o = { ...DEFAULT_TREE_FIT, ...opts };
  const rand = mulberry32(o.seed);
  const usable = lists.filter((l) => l.labels.some((y) => y > 0) && l.rows.length > 1);
  const X: Float32Array[] = [];
  const Y: number[] = [];
  const listOf: Array<[number, number]> = [];
  for (const l of usable) {
    listOf.push([X.length, X.length + l.rows.length]);
    X.push(...l.rows);
    Y.push(...l.labels);
  }
  const n = X.length;
  const edges = binEdges(X, o.bins);
  // Binned matrix: bin index of each value (value <= edges[b] -> bin b).
  const B = SEARCH_FEATURES.map((_, j) => {
    const e = edges[j] as number[];
    const col = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = (X[i] as Float32Array)[j] as number;
      let lo = 0;
      let hi = e.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x <= (e[mid] as number)) hi = mid;
        else lo = mid + 1;
      }
      col[i] = lo;
    }
    return col;
  });
  const frozen = new Set(o.frozen.map((f) => SEARCH_FEATURES.indexOf(f)));
  const scores = new Float64Array(n);
  const idcg = listOf.map(([a, b]) => {
    const ys = Y.slice(a, b).sort((x, y) => y - x);
    return ys.slice(0, o.k).reduce((s, y, r) => s + y / Math.log2(r + 2), 0) || 1;
  });
  const trees: Tree[] = [];
  const grad = new Float64Array(n);
  const hess = new Float64Array(n);
  for (let t = 0; t < o.trees; t++) {
    grad.fill(0);
    hess.fill(0);
    listOf.forEach(([a, b], li) => {
      const order = Array.from({ length: b - a }, (_, i) => a + i).sort(
        (p, q) => (scores[q] as number) - (scores[p] as number),
      );
      const rank = new Int32Array(b - a);
      order.forEach((i, r) => (rank[i - a] = r));
      const disc = (r: number) => (r < o.k ? 1 / Math.log2(r + 2) : 0);
      // Swapping two items both below the cut-off changes NDCG@k by nothing: only pairs with one
      // member in the current top k carry a gradient.
      const head = order.slice(0, o.k);
      for (let i = a; i < b; i++) {
        const yi = Y[i] as number;
        if (yi <= 0) continue;
        const ri = rank[i - a] as number;
        const partners = ri < o.k ? order : head;
        for (const j of partners) {
          const yj = Y[j] as number;
          if (yj >= yi) continue;
          const rj = rank[j - a] as number;
          const dNdcg = Math.abs((yi - yj) * (disc(ri) - disc(rj))) / (idcg[li] as number);
          if (dNdcg === 0) continue;
          const rho = 1 / (1 + Math.exp((scores[i] as number) - (scores[j] as number)));
          grad[i] = (grad[i] as number) + rho * dNdcg;
          grad[j] = (grad[j] as number) - rho * dNdcg;
          const h = rho * (1 - rho) * dNdcg;
          hess[i] = (hess[i] as number) + h;
          hess[j] = (hess[j] as number) + h;
        }
      }
    });
    const features = SEARCH_FEATURES.map((_, j) => j).filter((j) => !frozen.has(j) && rand() < o.featureShare);
    const tree = growTree(B, edges, grad, hess, features, o);
    // Apply the tree to the training rows.
    for (let i = 0; i < n; i++) {
      let node = 0;
      while ((tree.feature[node] as number) >= 0)
        node =
          ((B[tree.feature[node] as number] as Uint8Array)[i] as number) <= (tree.bin[node] as number)
            ? (tree.left[node] as number)
            : (tree.right[node] as number);
      scores[i] = (scores[i] as number) + (tree.value[node] as number);
    }
    trees.push({
      feature: tree.feature,
      threshold: tree.threshold,
      left: tree.left,
      right: tree.right,
      value: tree.value,
    });
  }
  return new TreeScorer(0, trees);
}

function growTree(
  B: readonly Uint8Array[],
  edges: readonly number[][],
  grad: Float64Array,
  hess: Float64Array,
  features: readonly number[],
  o: TreeFitOptions,
): Tree & { bin: number[] } {
  const tree: Tree & { bin: number[] } = { feature: [], threshold: [], left: [], right: [], value: [], bin: [] };
  const leafValue = (rows: number[]) => {
    let g = 0;
    let h = 0;
    for (const i of rows) {
      g += grad[i] as number;
      h += hess[i] as number;
    }
    return (o.learningRate * g) / (h + 1e-9 + 1);
  };
  const all = Array.from({ length: grad.length }, (_, i) => i);
  const build = (rows: number[], depth: number): number => {
    const node = tree.feature.length;
    tree.feature.push(-1);
    tree.threshold.push(0);
    tree.left.push(-1);
    tree.right.push(-1);
    tree.bin.push(0);
    tree.value.push(leafValue(rows));
    if (depth >= o.depth || rows.length < 2 * o.minLeaf) return node;
    let G = 0;
    for (const i of rows) G += grad[i] as number;
    let best = { gain: 0, feature: -1, bin: -1 };
    for (const j of features) {
      const nb = (edges[j] as number[]).length + 1;
      const gs = new Float64Array(nb);
      const cs = new Int32Array(nb);
      const col = B[j] as Uint8Array;
      for (const i of rows) {
        const b = col[i] as number;
        gs[b] = (gs[b] as number) + (grad[i] as number);
        cs[b] = (cs[b] as number) + 1;
      }
      let gl = 0;
      let cl = 0;
      for (let b = 0; b < nb - 1; b++) {
        gl += gs[b] as number;
        cl += cs[b] as number;
        const cr = rows.length - cl;
        if (cl < o.minLeaf || cr < o.minLeaf) continue;
        const gr = G - gl;
        // Variance-reduction gain on the lambda gradients (least-squares fit of the tree).
        const gain = (gl * gl) / cl + (gr * gr) / cr - (G * G) / rows.length;
        if (gain > best.gain) best = { gain, feature: j, bin: b };
      }
    }
    if (best.feature < 0) return node;
    const col = B[best.feature] as Uint8Array;
    const leftRows = rows.filter((i) => (col[i] as number) <= best.bin);
    const rightRows = rows.filter((i) => (col[i] as number) > best.bin);
    tree.feature[node] = best.feature;
    tree.bin[node] = best.bin;
    tree.threshold[node] = (edges[best.feature] as number[])[best.bin] as number;
    tree.left[node] = build(leftRows, depth + 1);
    tree.right[node] = build(rightRows, depth + 1);
    return node;
  };
  build(all, 0);
  return tree;
}

/**
 * What Search serves before the trainer has published a scorer: BM25F leads; coverage of the query in
 * the title, the expanded query, the encoder, the product type and popularity add to it. Set by reasoning
 * about the features' ranges, not fitted to any labels.
 */
export const FALLBACK_SEARCH_SCORER = LinearScorer.of({
  bm25f_norm: 1,
  title_coverage: 0.5,
  coverage: 0.25,
  rm3_norm: 0.25,
  semantic: 0.25,
  head_match: 0.25,
  popularity_log: 0.02,
});
