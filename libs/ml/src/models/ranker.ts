import { mulberry32, shuffleInPlace } from '../eval/random';
import { tf } from '../nn/backend';
import { matMul } from '../nn/ops';
import type { WeightMap } from './sasrec';

/**
 * The learned ranker: a small MLP over retrieval scores, user, item and cross features, trained with a
 * listwise softmax loss on logged next interactions (one positive per candidate list). The feature
 * order is the contract between the trainer and the ranking service.
 */
export const RANKER_FEATURES = [
  'seq_score',
  'seq_rank_log',
  'covis_score_log',
  'covis_rank_log',
  'popularity_log',
  'ctr',
  'conversion_rate',
  'category_affinity',
  'price_z',
  'text_score',
  'lexical_score',
  'user_history_log',
  'same_category_as_last',
  'attribute_overlap',
] as const;

export type RankerFeatureName = (typeof RANKER_FEATURES)[number];
export const RANKER_DIM = RANKER_FEATURES.length;

/** Builds a feature row from named values (missing = 0). */
export function rankerRow(values: Partial<Record<RankerFeatureName, number>>): Float32Array {
  return Float32Array.from(RANKER_FEATURES, (f) => {
    const v = values[f] ?? 0;
    return Number.isFinite(v) ? v : 0;
  });
}

/** What the ranking service (online) and the trainer (offline) know about one candidate. */
export interface RankerInputs {
  /** Sequence-model score (inner product) and 0-based rank in its retrieval list, when retrieved. */
  seqScore?: number | undefined;
  seqRank?: number | undefined;
  covisScore?: number | undefined;
  covisRank?: number | undefined;
  /** Interaction count or decayed popularity. */
  popularity?: number | undefined;
  ctr?: number | undefined;
  conversionRate?: number | undefined;
  /** The user's affinity for the item's category relative to their strongest category, 0..1. */
  categoryAffinity?: number | undefined;
  price?: number | undefined;
  userPriceMean?: number | undefined;
  userPriceStd?: number | undefined;
  /** Semantic similarity to the query (search). */
  textScore?: number | undefined;
  /** Lexical (BM25) score normalized to 0..1 within the request (search). */
  lexicalScore?: number | undefined;
  historyLength: number;
  sameCategoryAsLast?: boolean | undefined;
  attributeOverlap?: number | undefined;
}

const NOT_RETRIEVED_RANK = 100;

const finite = (v: number): number => (Number.isFinite(v) ? v : 0);

/**
 * Writes the features of one candidate into `out` at `offset` (RANKER_DIM values, in RANKER_FEATURES
 * order) without allocating: the ranking service fills one preallocated matrix per request.
 */
export function writeRankerFeatures(x: RankerInputs, out: Float32Array, offset: number): void {
  const priceZ =
    x.price !== undefined && x.userPriceMean !== undefined && x.price > 0
      ? Math.max(-5, Math.min(5, (x.price - x.userPriceMean) / ((x.userPriceStd ?? 0) + 0.25 * x.userPriceMean + 1e-6)))
      : 0;
  out[offset] = finite(x.seqScore ?? 0);
  out[offset + 1] = finite(Math.log1p(x.seqRank ?? NOT_RETRIEVED_RANK));
  out[offset + 2] = finite(Math.log1p(Math.max(0, x.covisScore ?? 0)));
  out[offset + 3] = finite(Math.log1p(x.covisRank ?? NOT_RETRIEVED_RANK));
  out[offset + 4] = finite(Math.log1p(Math.max(0, x.popularity ?? 0)));
  out[offset + 5] = finite(x.ctr ?? 0.05);
  out[offset + 6] = finite(x.conversionRate ?? 0.01);
  out[offset + 7] = finite(x.categoryAffinity ?? 0);
  out[offset + 8] = finite(priceZ);
  out[offset + 9] = finite(x.textScore ?? 0);
  out[offset + 10] = finite(x.lexicalScore ?? 0);
  out[offset + 11] = finite(Math.log1p(x.historyLength));
  out[offset + 12] = x.sameCategoryAsLast ? 1 : 0;
  out[offset + 13] = finite(x.attributeOverlap ?? 0);
}

/** The one feature builder, shared by trainer and ranking service so that both compute the same values. */
export function rankerFeatures(x: RankerInputs): Float32Array {
  const row = new Float32Array(RANKER_DIM);
  writeRankerFeatures(x, row, 0);
  return row;
}

/** The fallback when no ranker is published: a fixed weighting of the same features. */
export const HEURISTIC_WEIGHTS: Partial<Record<RankerFeatureName, number>> = {
  seq_score: 0.3,
  seq_rank_log: -0.3,
  covis_score_log: 0.5,
  covis_rank_log: -0.2,
  popularity_log: 0.15,
  ctr: 1,
  conversion_rate: 2,
  category_affinity: 0.5,
  price_z: -0.05,
  text_score: 1,
  lexical_score: 1,
  same_category_as_last: 0.2,
  attribute_overlap: 0.5,
};

const HEURISTIC_VECTOR = Float64Array.from(RANKER_FEATURES, (f) => HEURISTIC_WEIGHTS[f] ?? 0);

/** The heuristic score of the row that starts at `offset` of a row-major feature matrix. */
export function heuristicScoreAt(matrix: Float32Array, offset: number): number {
  let s = 0;
  for (let j = 0; j < RANKER_DIM; j++) s += (HEURISTIC_VECTOR[j] as number) * (matrix[offset + j] as number);
  return s;
}

export function heuristicScore(row: Float32Array): number {
  return heuristicScoreAt(row, 0);
}

/** One user's candidates (rows of RANKER_FEATURES) and which of them was interacted with next. */
export interface CandidateList {
  rows: Float32Array[];
  positive: number;
}

export interface RankerConfig {
  hidden: [number, number];
  learningRate: number;
  epochs: number;
  batchLists: number;
  seed: number;
}

export const DEFAULT_RANKER: RankerConfig = {
  hidden: [32, 16],
  learningRate: 3e-3,
  epochs: 10,
  batchLists: 256,
  seed: 1,
};

export class Ranker {
  readonly cfg: RankerConfig;
  mean: Float32Array = new Float32Array(RANKER_DIM);
  std: Float32Array = new Float32Array(RANKER_DIM).fill(1);
  private readonly layers: Array<{ w: tf.Variable; b: tf.Variable }>;

  constructor(cfg: Partial<RankerConfig> = {}) {
    this.cfg = { ...DEFAULT_RANKER, ...cfg };
    const sizes = [RANKER_DIM, ...this.cfg.hidden, 1];
    let seed = this.cfg.seed * 100;
    this.layers = sizes.slice(1).map((out, i) => {
      const inp = sizes[i] as number;
      return {
        w: tf.variable(tf.randomNormal([inp, out], 0, Math.sqrt(2 / inp), 'float32', seed++), true, `ranker.l${i}.w`),
        b: tf.variable(tf.zeros([out]), true, `ranker.l${i}.b`),
      };
    });
  }

  variables(): tf.Variable[] {
    return this.layers.flatMap((l) => [l.w, l.b]);
  }

  private forward(x: tf.Tensor2D): tf.Tensor2D {
    let h: tf.Tensor2D = tf.div(tf.sub(x, tf.tensor1d(this.mean)), tf.tensor1d(this.std));
    this.layers.forEach((l, i) => {
      h = tf.add(matMul(h, l.w as tf.Tensor2D), l.b) as tf.Tensor2D;
      if (i < this.layers.length - 1) h = tf.relu(h);
    });
    return h;
  }

  async fit(lists: readonly CandidateList[], onEpoch?: (epoch: number, loss: number) => void): Promise<void> {
    const usable = lists.filter((l) => l.positive >= 0 && l.rows.length > 1);
    const all = usable.flatMap((l) => l.rows);
    for (let j = 0; j < RANKER_DIM; j++) {
      let m = 0;
      for (const r of all) m += r[j] as number;
      m /= Math.max(1, all.length);
      let v = 0;
      for (const r of all) v += ((r[j] as number) - m) ** 2;
      this.mean[j] = m;
      // A feature constant in training (e.g. text scores when training on recommendations) carries no
      // learned weight: a huge scale switches its input off instead of leaving a random weight on it.
      this.std[j] = Math.sqrt(v / Math.max(1, all.length)) || 1e9;
    }
    const rand = mulberry32(this.cfg.seed);
    const opt = tf.train.adam(this.cfg.learningRate);
    for (let epoch = 1; epoch <= this.cfg.epochs; epoch++) {
      const order = shuffleInPlace(
        usable.map((_, i) => i),
        rand,
      );
      let sum = 0;
      let steps = 0;
      for (let s = 0; s < order.length; s += this.cfg.batchLists) {
        const batch = order.slice(s, s + this.cfg.batchLists).map((i) => usable[i] as CandidateList);
        const K = Math.max(...batch.map((l) => l.rows.length));
        const x = new Float32Array(batch.length * K * RANKER_DIM);
        const mask = new Float32Array(batch.length * K).fill(-1e9);
        const target = new Int32Array(batch.length);
        batch.forEach((l, b) => {
          l.rows.forEach((r, k) => {
            x.set(r, (b * K + k) * RANKER_DIM);
            mask[b * K + k] = 0;
          });
          target[b] = l.positive;
        });
        const cost = opt.minimize(
          () => {
            const scores = tf.add(
              this.forward(tf.tensor2d(x, [batch.length * K, RANKER_DIM])).reshape([batch.length, K]),
              tf.tensor2d(mask, [batch.length, K]),
            );
            const onehot = tf.cast(tf.oneHot(tf.tensor1d(target, 'int32'), K), 'float32');
            return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(scores), onehot), 1))) as tf.Scalar;
          },
          true,
          this.variables(),
        );
        sum += (await cost?.data())?.[0] ?? 0;
        cost?.dispose();
        steps++;
      }
      onEpoch?.(epoch, sum / Math.max(1, steps));
    }
    opt.dispose();
  }

  score(rows: readonly Float32Array[]): Float32Array {
    if (rows.length === 0) return new Float32Array();
    const x = new Float32Array(rows.length * RANKER_DIM);
    rows.forEach((r, i) => x.set(r, i * RANKER_DIM));
    const out = tf.tidy(() => this.forward(tf.tensor2d(x, [rows.length, RANKER_DIM])));
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return data;
  }

  /** The learned weights (with the standardization), to restore the best epoch later. */
  snapshot(): { mean: Float32Array; std: Float32Array; weights: Float32Array[] } {
    return {
      mean: this.mean.slice(),
      std: this.std.slice(),
      weights: this.variables().map((v) => (v.dataSync() as Float32Array).slice()),
    };
  }

  restore(s: { mean: Float32Array; std: Float32Array; weights: Float32Array[] }): void {
    this.mean = s.mean.slice();
    this.std = s.std.slice();
    this.variables().forEach((v, i) => v.assign(tf.tensor(s.weights[i] as Float32Array, v.shape)));
  }

  weights(): WeightMap {
    const out: WeightMap = new Map([
      ['mean', { shape: [RANKER_DIM], data: this.mean }],
      ['std', { shape: [RANKER_DIM], data: this.std }],
    ]);
    this.layers.forEach((l, i) => {
      out.set(`l${i}.w`, { shape: l.w.shape, data: l.w.dataSync() as Float32Array });
      out.set(`l${i}.b`, { shape: l.b.shape, data: l.b.dataSync() as Float32Array });
    });
    return out;
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}
