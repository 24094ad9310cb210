import { historyAndTarget, numItems, type SequenceDataset } from '../data/sequences';
import { evaluate, type Metrics, type Protocol, type SyncSequenceScorer } from './evaluate';

/**
 * Item pairs that occur close together in sequences, in compressed rows: row a lists every item b that
 * followed a within `window` steps (weight gapWeight(gap)), and, when `backwardWeight` > 0, every item
 * that preceded it (weight backwardWeight x gapWeight(gap)). Duplicate pairs are summed.
 */
export class PairCounts {
  readonly rowStart: Int32Array;
  readonly cols: Int32Array;
  readonly vals: Float32Array;

  constructor(
    sequences: readonly Int32Array[],
    numItemsCount: number,
    window: number,
    gapWeight: (gap: number) => number,
    backwardWeight = 0,
  ) {
    const both = backwardWeight > 0;
    const counts = new Int32Array(numItemsCount + 2);
    const bump = (row: number, n: number) => (counts[row + 1] = (counts[row + 1] as number) + n);
    for (const s of sequences)
      for (let a = 0; a < s.length; a++) {
        bump(s[a] as number, Math.min(window, s.length - 1 - a));
        if (both) bump(s[a] as number, Math.min(window, a));
      }
    for (let i = 1; i < counts.length; i++) counts[i] = (counts[i] as number) + (counts[i - 1] as number);
    const fill = counts.slice();
    const rawCols = new Int32Array(counts[numItemsCount + 1] as number);
    const rawVals = new Float32Array(rawCols.length);
    const put = (row: number, col: number, v: number) => {
      const p = fill[row] as number;
      fill[row] = p + 1;
      rawCols[p] = col;
      rawVals[p] = v;
    };
    const weights = Float32Array.from({ length: window + 1 }, (_, g) => (g === 0 ? 0 : gapWeight(g)));
    for (const s of sequences)
      for (let a = 0; a < s.length; a++)
        for (let g = 1; g <= window && a + g < s.length; g++) {
          put(s[a] as number, s[a + g] as number, weights[g] as number);
          if (both) put(s[a + g] as number, s[a] as number, backwardWeight * (weights[g] as number));
        }
    this.rowStart = new Int32Array(numItemsCount + 2);
    const cols: number[] = [];
    const vals: number[] = [];
    const acc = new Map<number, number>();
    for (let i = 0; i <= numItemsCount; i++) {
      this.rowStart[i] = cols.length;
      acc.clear();
      for (let p = counts[i] as number; p < (counts[i + 1] as number); p++)
        acc.set(rawCols[p] as number, (acc.get(rawCols[p] as number) ?? 0) + (rawVals[p] as number));
      for (const [b, v] of acc) {
        cols.push(b);
        vals.push(v);
      }
    }
    this.rowStart[numItemsCount + 1] = cols.length;
    this.cols = Int32Array.from(cols);
    this.vals = Float32Array.from(vals);
  }

  /** Calls `fn(item, weight)` for every pair in row `a`. */
  forEach(a: number, fn: (item: number, weight: number) => void): void {
    if (a < 0 || a + 1 >= this.rowStart.length) return;
    for (let p = this.rowStart[a] as number; p < (this.rowStart[a + 1] as number); p++)
      fn(this.cols[p] as number, this.vals[p] as number);
  }
}

export interface CoVisitationConfig {
  /** Pairs count within this many steps ... */
  window: number;
  /** ... with weight 1 / gap^gapDecay ... */
  gapDecay: number;
  /** ... and the reverse direction (b before a) at this share of the forward weight (0 = next items only). */
  backwardWeight: number;
  /** A history's last `lookback` items vote ... */
  lookback: number;
  /** ... the r-th most recent with weight 1 / r^recencyDecay. */
  recencyDecay: number;
  /** A pair's weight is divided by popularity(b)^popularityNorm (0 = raw counts). */
  popularityNorm: number;
}

export const DEFAULT_CO_VISITATION: CoVisitationConfig = {
  window: 3,
  gapDecay: 1,
  backwardWeight: 0,
  lookback: 3,
  recencyDecay: 1,
  popularityNorm: 0,
};

/**
 * Windowed, recency-weighted item co-visitation: pair counts from `sequences` (the parts a split may
 * see), scored for a history by its most recent items. Popularity breaks ties.
 */
export class WindowedCoVisitation implements SyncSequenceScorer {
  readonly name: string;
  readonly pairs: PairCounts;
  readonly popularity: Float32Array;
  /** Popularity scaled far below any pair weight: the tie-breaker every score starts from. */
  private readonly base: Float32Array;

  constructor(
    sequences: readonly Int32Array[],
    readonly numItems: number,
    readonly cfg: CoVisitationConfig,
    pairs?: PairCounts,
  ) {
    this.name = `CoVisitation(${Object.entries(cfg)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`;
    this.pairs =
      pairs ?? new PairCounts(sequences, numItems, cfg.window, (g) => 1 / g ** cfg.gapDecay, cfg.backwardWeight);
    this.popularity = new Float32Array(numItems + 1);
    for (const s of sequences) for (const i of s) this.popularity[i] = (this.popularity[i] as number) + 1;
    let maxPop = 1;
    for (const p of this.popularity) maxPop = Math.max(maxPop, p);
    this.base = this.popularity.map((p) => (p / maxPop) * 1e-6);
  }

  /** Co-visitation scores of every item for `history` (index 0 unused). */
  scores(history: Int32Array): Float32Array {
    const out = Float32Array.from(this.base);
    const { lookback, recencyDecay, popularityNorm } = this.cfg;
    for (let r = 0; r < lookback && r < history.length; r++) {
      const w = 1 / (r + 1) ** recencyDecay;
      this.pairs.forEach(history[history.length - 1 - r] as number, (j, v) => {
        const norm = popularityNorm > 0 ? Math.max(1, this.popularity[j] as number) ** popularityNorm : 1;
        out[j] = (out[j] as number) + (w * v) / norm;
      });
    }
    return out;
  }

  scoreBatch(histories: readonly Int32Array[]): Float32Array[] {
    return histories.map((h) => this.scores(h));
  }

  /** An item's strongest partners (what a co-visitation store serves), best first. */
  neighbors(item: number, limit: number): Array<{ item: number; score: number }> {
    const out: Array<{ item: number; score: number }> = [];
    const norm = (j: number) =>
      this.cfg.popularityNorm > 0 ? Math.max(1, this.popularity[j] as number) ** this.cfg.popularityNorm : 1;
    this.pairs.forEach(item, (j, v) => out.push({ item: j, score: v / norm(j) }));
    return out.sort((a, b) => b.score - a.score || a.item - b.item).slice(0, limit);
  }
}

/** Every user's sequence but its last `drop` items: what a split may count (drop 2 = training parts). */
export function sequencesBefore(d: SequenceDataset, split: 'valid' | 'test'): Int32Array[] {
  return d.sequences.map((s) => (s.length >= 3 ? historyAndTarget(s, split).history : s));
}

export interface CoVisitationTrial {
  config: CoVisitationConfig;
  validation: Metrics;
}

/**
 * Chooses the co-visitation settings on the validation split (pairs counted on training parts only):
 * coordinate search from the defaults, one setting at a time, NDCG@10 under `protocol`.
 */
export async function tuneCoVisitation(
  d: SequenceDataset,
  protocol: Protocol,
  opts: { users?: readonly number[]; deadline?: number; log?: (m: string) => void } = {},
): Promise<{ best: CoVisitationConfig; trials: CoVisitationTrial[] }> {
  const counted = sequencesBefore(d, 'valid');
  const n = numItems(d);
  const trials: CoVisitationTrial[] = [];
  const pairCache = new Map<string, PairCounts>();
  const score = async (cfg: CoVisitationConfig): Promise<number> => {
    const key = `${cfg.window}/${cfg.gapDecay}/${cfg.backwardWeight}`;
    let pairs = pairCache.get(key);
    const model = new WindowedCoVisitation(counted, n, cfg, pairs);
    if (!pairs) pairCache.set(key, (pairs = model.pairs));
    const validation = await evaluate(model, d, {
      split: 'valid',
      protocol,
      ...(opts.users ? { users: opts.users } : {}),
    });
    trials.push({ config: cfg, validation });
    opts.log?.(`co-visitation ${model.name}: validation NDCG@10 ${validation.ndcg10.toFixed(4)}`);
    return validation.ndcg10;
  };
  let best = DEFAULT_CO_VISITATION;
  let bestScore = await score(best);
  const axes: Array<[keyof CoVisitationConfig, number[]]> = [
    ['window', [1, 5, 10]],
    ['backwardWeight', [0.25, 0.5, 1]],
    ['lookback', [1, 5, 10]],
    ['recencyDecay', [0.5, 2]],
    ['gapDecay', [0.5, 2]],
    ['popularityNorm', [0.25, 0.5]],
  ];
  for (const [key, values] of axes)
    for (const v of values) {
      if (opts.deadline && Date.now() > opts.deadline) break;
      if (v === best[key]) continue;
      const cfg = { ...best, [key]: v };
      const s = await score(cfg);
      if (s > bestScore) {
        bestScore = s;
        best = cfg;
      }
    }
  return { best, trials };
}
