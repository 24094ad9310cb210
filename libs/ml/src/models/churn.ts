import type { Transaction } from '../data/readers';
import { rocAuc } from '../eval/classification';
import { randomFolds } from '../eval/random';
import { tf } from '../nn/backend';
import type { WeightMap } from './sasrec';

/**
 * Churn: behaviour features at a cut-off date; label = no activity within the horizon after it.
 * The same feature function serves CDNOW transactions (trainer), generated shops and the
 * churn-prediction service (from FeatureService user features).
 */

const DAY = 86_400_000;

/** What the features are computed from. Times in epoch ms; only activity before the cut-off. */
export interface ActivitySummary {
  firstAt: number;
  lastAt: number;
  /** Distinct visits: active days (transactions) or sessions (clickstream). */
  visits: number;
  /** Activity events (transactions, or clickstream events). */
  events: number;
  purchases: number;
  spend: number;
  /** Times of recent activity events (at least the last 90 days' worth when available). */
  recentEvents: readonly number[];
  /** Recent purchases with amounts. */
  recentPurchases: ReadonlyArray<{ at: number; amount: number }>;
}

export const CHURN_FEATURES = [
  'log_recency_days',
  'log_tenure_days',
  'log_visits',
  'log_events',
  'log_purchases',
  'log_spend',
  'log_avg_spend',
  'log_avg_gap_days',
  'overdue_ratio',
  'log_events_last_7d',
  'log_events_last_30d',
  'log_events_last_90d',
  'log_spend_last_90d',
  'log_activity_trend',
] as const;

export type ChurnFeatureName = (typeof CHURN_FEATURES)[number];

export function churnFeatures(s: ActivitySummary, cutoff: number): Float32Array {
  const days = (ms: number) => Math.max(0, ms) / DAY;
  const recency = days(cutoff - s.lastAt);
  const tenure = days(cutoff - s.firstAt);
  const gap = s.visits > 1 ? days(s.lastAt - s.firstAt) / (s.visits - 1) : tenure + 30;
  const within = (d: number) => s.recentEvents.filter((t) => t <= cutoff && t > cutoff - d * DAY).length;
  const last30 = within(30);
  const prev30 = s.recentEvents.filter((t) => t <= cutoff - 30 * DAY && t > cutoff - 60 * DAY).length;
  const spend90 = s.recentPurchases
    .filter((p) => p.at <= cutoff && p.at > cutoff - 90 * DAY)
    .reduce((a, p) => a + p.amount, 0);
  return Float32Array.from([
    Math.log1p(recency),
    Math.log1p(tenure),
    Math.log1p(s.visits),
    Math.log1p(s.events),
    Math.log1p(s.purchases),
    Math.log1p(s.spend),
    Math.log1p(s.purchases > 0 ? s.spend / s.purchases : 0),
    Math.log1p(gap),
    Math.min(20, recency / (gap + 1)),
    Math.log1p(within(7)),
    Math.log1p(last30),
    Math.log1p(within(90)),
    Math.log1p(spend90),
    Math.log((last30 + 1) / (prev30 + 1)),
  ]);
}

/** Per-customer summaries of transactions strictly before `cutoff`. */
export function summarizeTransactions(txs: readonly Transaction[], cutoff: number): Map<string, ActivitySummary> {
  const byCustomer = new Map<string, Transaction[]>();
  for (const t of txs) {
    if (t.at >= cutoff) continue;
    const l = byCustomer.get(t.customer) ?? [];
    l.push(t);
    byCustomer.set(t.customer, l);
  }
  const out = new Map<string, ActivitySummary>();
  for (const [c, l] of byCustomer) {
    l.sort((a, b) => a.at - b.at);
    out.set(c, {
      firstAt: (l[0] as Transaction).at,
      lastAt: (l[l.length - 1] as Transaction).at,
      visits: new Set(l.map((t) => Math.floor(t.at / DAY))).size,
      events: l.length,
      purchases: l.length,
      spend: l.reduce((a, t) => a + t.amount, 0),
      recentEvents: l.map((t) => t.at),
      recentPurchases: l.map((t) => ({ at: t.at, amount: t.amount })),
    });
  }
  return out;
}

export interface ChurnConfig {
  l2: number;
  learningRate: number;
  iterations: number;
}

export const DEFAULT_CHURN: ChurnConfig = { l2: 1e-3, learningRate: 0.05, iterations: 400 };

export interface Factor {
  feature: ChurnFeatureName;
  value: number;
  /** Contribution to the log-odds of churn. */
  contribution: number;
}

/**
 * Logistic regression on standardized features: calibrated probabilities and exact per-user factors
 * (weight x standardized value), which matter more to the people acting on alerts than a few points
 * of AUC from a deeper model.
 */
export class ChurnClassifier {
  readonly cfg: ChurnConfig;
  mean: Float32Array = new Float32Array(CHURN_FEATURES.length);
  std: Float32Array = new Float32Array(CHURN_FEATURES.length).fill(1);
  w: Float32Array = new Float32Array(CHURN_FEATURES.length);
  bias = 0;
  threshold = 0.5;

  constructor(cfg: Partial<ChurnConfig> = {}) {
    this.cfg = { ...DEFAULT_CHURN, ...cfg };
  }

  private standardize(X: readonly Float32Array[]): Float32Array {
    const F = CHURN_FEATURES.length;
    const out = new Float32Array(X.length * F);
    X.forEach((x, i) => {
      for (let j = 0; j < F; j++)
        out[i * F + j] = ((x[j] as number) - (this.mean[j] as number)) / (this.std[j] as number);
    });
    return out;
  }

  /** Full-batch training; `onLoss` hears the training loss every `every` iterations (for training curves). */
  async fit(
    X: readonly Float32Array[],
    y: ArrayLike<number>,
    progress: { onLoss?: (iteration: number, loss: number) => void; every?: number } = {},
  ): Promise<number> {
    const F = CHURN_FEATURES.length;
    for (let j = 0; j < F; j++) {
      let m = 0;
      for (const x of X) m += x[j] as number;
      m /= X.length;
      let v = 0;
      for (const x of X) v += ((x[j] as number) - m) ** 2;
      this.mean[j] = m;
      this.std[j] = Math.sqrt(v / X.length) || 1;
    }
    const xs = tf.tensor2d(this.standardize(X), [X.length, F]);
    const ys = tf.tensor2d(Float32Array.from(y), [X.length, 1]);
    const w = tf.variable(tf.zeros([F, 1]));
    const b = tf.variable(tf.scalar(0));
    const opt = tf.train.adam(this.cfg.learningRate);
    let last = 0;
    for (let it = 0; it < this.cfg.iterations; it++) {
      const cost = opt.minimize(
        () => {
          const logits = tf.add(tf.matMul(xs, w), b);
          const loss = tf.losses.sigmoidCrossEntropy(ys, logits);
          return tf.add(loss, tf.mul(this.cfg.l2, tf.sum(tf.square(w)))) as tf.Scalar;
        },
        true,
        [w, b],
      );
      const every = Math.max(1, progress.every ?? 10);
      if (it === this.cfg.iterations - 1 || (progress.onLoss && it % every === 0)) {
        const value = (await cost?.data())?.[0] ?? 0;
        progress.onLoss?.(it, value);
        last = value;
      }
      cost?.dispose();
    }
    this.w = w.dataSync().slice() as Float32Array;
    this.bias = (b.dataSync()[0] as number) ?? 0;
    [xs, ys, w, b].forEach((t) => t.dispose());
    opt.dispose();
    return last;
  }

  logit(x: Float32Array): number {
    let s = this.bias;
    for (let j = 0; j < CHURN_FEATURES.length; j++)
      s += (this.w[j] as number) * (((x[j] as number) - (this.mean[j] as number)) / (this.std[j] as number));
    return s;
  }

  predict(x: Float32Array): number {
    return 1 / (1 + Math.exp(-this.logit(x)));
  }

  /** Features by contribution to the churn log-odds, largest first. */
  factors(x: Float32Array, top = 3): Factor[] {
    return CHURN_FEATURES.map((feature, j) => ({
      feature,
      value: x[j] as number,
      contribution: (this.w[j] as number) * (((x[j] as number) - (this.mean[j] as number)) / (this.std[j] as number)),
    }))
      .sort((a, b) => b.contribution - a.contribution)
      .slice(0, top);
  }

  weights(): WeightMap {
    return new Map([
      ['mean', { shape: [CHURN_FEATURES.length], data: this.mean }],
      ['std', { shape: [CHURN_FEATURES.length], data: this.std }],
      ['w', { shape: [CHURN_FEATURES.length, 1], data: this.w }],
      ['b', { shape: [1], data: Float32Array.from([this.bias]) }],
    ]);
  }
}

/** The settings `aisle eval --model churn` and the trainer choose among, by cross-validation. */
export const CHURN_CANDIDATES: ReadonlyArray<Partial<ChurnConfig>> = [
  { l2: 1e-4 },
  { l2: 1e-3 },
  { l2: 1e-2 },
  { l2: 1e-1 },
];

export interface ChurnSelection {
  criterion: string;
  folds: number;
  candidates: Array<{ config: ChurnConfig; cvRocAuc: number; foldRocAuc: number[] }>;
  selected: ChurnConfig;
}

/**
 * k-fold cross-validation on training rows only: each candidate is fit on k-1 folds and scored (ROC AUC)
 * on the held-out fold; the best mean wins. Folds are a seeded shuffle.
 */
export async function selectChurnModel(
  X: readonly Float32Array[],
  y: readonly number[],
  opts: { folds?: number; seed?: number; candidates?: ReadonlyArray<Partial<ChurnConfig>> } = {},
): Promise<ChurnSelection> {
  const folds = opts.folds ?? 5;
  const fold = randomFolds(X.length, folds, opts.seed ?? 1);
  const candidates: ChurnSelection['candidates'] = [];
  for (const partial of opts.candidates ?? CHURN_CANDIDATES) {
    const foldRocAuc: number[] = [];
    let config: ChurnConfig = { ...DEFAULT_CHURN, ...partial };
    for (let f = 0; f < folds; f++) {
      const tr = X.map((_, i) => i).filter((i) => fold[i] !== f);
      const va = X.map((_, i) => i).filter((i) => fold[i] === f);
      const clf = new ChurnClassifier(partial);
      config = clf.cfg;
      await clf.fit(
        tr.map((i) => X[i] as Float32Array),
        tr.map((i) => y[i] as number),
      );
      foldRocAuc.push(
        rocAuc(
          va.map((i) => clf.predict(X[i] as Float32Array)),
          va.map((i) => y[i] as number),
        ),
      );
    }
    candidates.push({ config, cvRocAuc: foldRocAuc.reduce((a, b) => a + b, 0) / folds, foldRocAuc });
  }
  const best = candidates.reduce((a, b) => (b.cvRocAuc > a.cvRocAuc ? b : a));
  return {
    criterion: `${folds}-fold cross-validated ROC AUC on training rows`,
    folds,
    candidates,
    selected: best.config,
  };
}
