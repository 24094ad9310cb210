/**
 * Gradient-boosted decision trees for binary labels (logistic loss, second-order leaf values, quantile
 * histograms), small and dependency-free. Aisle does not serve it: `aisle eval --model churn` fits it in
 * its cross-validation study to measure whether a non-linear model with more features would beat the
 * served logistic regression (on CDNOW it does not).
 */

export interface GbdtConfig {
  trees: number;
  depth: number;
  learningRate: number;
  minLeaf: number;
  bins: number;
  /** L2 penalty on leaf values. */
  lambda: number;
}

export const DEFAULT_GBDT: GbdtConfig = { trees: 150, depth: 3, learningRate: 0.05, minLeaf: 50, bins: 32, lambda: 1 };

type Node = { leaf: number } | { feature: number; bin: number; left: Node; right: Node };

/** Fits on rows `X` (all of one width) and 0/1 labels; returns the log-odds predictor. */
export function fitGbdt(
  X: readonly ArrayLike<number>[],
  y: readonly number[],
  cfg: Partial<GbdtConfig> = {},
): (x: ArrayLike<number>) => number {
  const { trees, depth, learningRate, minLeaf, bins, lambda } = { ...DEFAULT_GBDT, ...cfg };
  if (!Number.isInteger(bins) || bins < 2 || bins > 256) throw new RangeError('bins must be an integer in 2..256');
  const n = X.length;
  const F = X[0]?.length ?? 0;
  // Per-feature cut points at the training quantiles; a value's bin is the number of cuts below it.
  const cuts: Float64Array[] = [];
  for (let j = 0; j < F; j++) {
    const v = Float64Array.from(X, (r) => r[j] as number).sort();
    const c = new Set<number>();
    for (let b = 1; b < bins; b++) c.add(v[Math.floor((b * n) / bins)] as number);
    cuts.push(Float64Array.from([...c].sort((a, b) => a - b)));
  }
  const binOf = (j: number, value: number): number => {
    const c = cuts[j] as Float64Array;
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (value > (c[mid] as number)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const B = new Uint8Array(n * F);
  X.forEach((r, i) => {
    for (let j = 0; j < F; j++) B[i * F + j] = binOf(j, r[j] as number);
  });
  const positives = y.reduce((a, b) => a + b, 0);
  const base = Math.log(Math.max(1, positives) / Math.max(1, n - positives));
  const score = new Float64Array(n).fill(base);
  const g = new Float64Array(n);
  const h = new Float64Array(n);
  const forest: Node[] = [];

  const grow = (rows: Int32Array, level: number): Node => {
    let G = 0;
    let H = 0;
    for (const i of rows) {
      G += g[i] as number;
      H += h[i] as number;
    }
    const leaf = { leaf: -G / (H + lambda) };
    if (level === depth || rows.length < 2 * minLeaf) return leaf;
    let best = { gain: 1e-9, feature: -1, bin: -1 };
    const gb = new Float64Array(bins);
    const hb = new Float64Array(bins);
    const cb = new Int32Array(bins);
    for (let j = 0; j < F; j++) {
      gb.fill(0);
      hb.fill(0);
      cb.fill(0);
      for (const i of rows) {
        const b = B[i * F + j] as number;
        gb[b] = (gb[b] as number) + (g[i] as number);
        hb[b] = (hb[b] as number) + (h[i] as number);
        cb[b] = (cb[b] as number) + 1;
      }
      let gl = 0;
      let hl = 0;
      let cl = 0;
      for (let b = 0; b < bins - 1; b++) {
        gl += gb[b] as number;
        hl += hb[b] as number;
        cl += cb[b] as number;
        if (cl < minLeaf || rows.length - cl < minLeaf) continue;
        const gain = (gl * gl) / (hl + lambda) + (G - gl) ** 2 / (H - hl + lambda) - (G * G) / (H + lambda);
        if (gain > best.gain) best = { gain, feature: j, bin: b };
      }
    }
    if (best.feature < 0) return leaf;
    const goesLeft = (i: number) => (B[i * F + best.feature] as number) <= best.bin;
    return {
      feature: best.feature,
      bin: best.bin,
      left: grow(rows.filter(goesLeft), level + 1),
      right: grow(
        rows.filter((i) => !goesLeft(i)),
        level + 1,
      ),
    };
  };
  const evaluate = (node: Node, binAt: (j: number) => number): number => {
    let at = node;
    while (!('leaf' in at)) at = binAt(at.feature) <= at.bin ? at.left : at.right;
    return at.leaf;
  };

  const all = Int32Array.from({ length: n }, (_, i) => i);
  for (let t = 0; t < trees; t++) {
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-(score[i] as number)));
      g[i] = p - (y[i] as number);
      h[i] = p * (1 - p);
    }
    const tree = grow(all, 0);
    forest.push(tree);
    for (let i = 0; i < n; i++)
      score[i] = (score[i] as number) + learningRate * evaluate(tree, (j) => B[i * F + j] as number);
  }
  return (x) => {
    let s = base;
    for (const tree of forest) s += learningRate * evaluate(tree, (j) => binOf(j, x[j] as number));
    return s;
  };
}
