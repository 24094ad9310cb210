import { evaluableUsers, historyAndTarget, numItems, trainPart, type SequenceDataset } from '../data/sequences';
import { mulberry32, shuffleInPlace } from './random';

/**
 * Scores every item (index 0..numItems) for each history. Returned rows are `numItems + 1` long; the
 * evaluator ignores index 0 (padding).
 */
export interface SequenceScorer {
  readonly name: string;
  scoreBatch(histories: readonly Int32Array[]): Promise<Float32Array[]> | Float32Array[];
}

/** A scorer that answers synchronously (baselines, TF.js models on CPU backends). */
export interface SyncSequenceScorer extends SequenceScorer {
  scoreBatch(histories: readonly Int32Array[]): Float32Array[];
}

export interface Metrics {
  hr10: number;
  ndcg10: number;
  hr20: number;
  ndcg20: number;
  mrr: number;
  users: number;
}

export type Protocol = { kind: 'full' } | { kind: 'sampled'; negatives: number; seed: number; maxUsers: number };

class Accumulator {
  private n = 0;
  private hr10 = 0;
  private ndcg10 = 0;
  private hr20 = 0;
  private ndcg20 = 0;
  private mrr = 0;

  /** `rank` is 0-based (0 = first). */
  add(rank: number): void {
    this.n++;
    this.mrr += 1 / (rank + 1);
    if (rank < 20) {
      this.hr20++;
      this.ndcg20 += 1 / Math.log2(rank + 2);
      if (rank < 10) {
        this.hr10++;
        this.ndcg10 += 1 / Math.log2(rank + 2);
      }
    }
  }

  result(): Metrics {
    const n = Math.max(1, this.n);
    return {
      hr10: this.hr10 / n,
      ndcg10: this.ndcg10 / n,
      hr20: this.hr20 / n,
      ndcg20: this.ndcg20 / n,
      mrr: this.mrr / n,
      users: this.n,
    };
  }
}

/**
 * Full ranking: the target against every item, the user's earlier items excluded (as in S3-Rec/ICLRec,
 * including the target when it occurred earlier). Ties are broken by item index (lower first).
 */
export function rankFull(scores: Float32Array, target: number, exclude: Int32Array): number {
  const t = scores[target] as number;
  for (const e of exclude) if (e === target) return Number.POSITIVE_INFINITY;
  const ahead = (i: number) => {
    const s = scores[i] as number;
    return s > t || (s === t && i < target);
  };
  let rank = 0;
  for (let i = 1; i < scores.length; i++) if (i !== target && ahead(i)) rank++;
  // Excluded items ranked ahead do not count (each distinct one once).
  const seen = new Set<number>();
  for (const e of exclude) if (e > 0 && e !== target && !seen.has(e) && (seen.add(e), ahead(e))) rank--;
  return rank;
}

/** Rank against sampled negatives; ties count half. */
export function rankSampled(scores: Float32Array, target: number, negatives: Int32Array): number {
  const t = scores[target] as number;
  let rank = 0;
  for (const n of negatives) {
    const s = scores[n] as number;
    if (s > t) rank++;
    else if (s === t) rank += 0.5;
  }
  return rank;
}

/**
 * SASRec's sampled protocol: 100 negatives drawn uniformly (with repetition) from items outside the
 * user's training items; the model reads training items plus the validation item; at most `maxUsers`
 * random users.
 */
export function sampleNegatives(
  d: SequenceDataset,
  users: readonly number[],
  negatives: number,
  seed: number,
): Map<number, Int32Array> {
  const rand = mulberry32(seed);
  const n = numItems(d);
  const out = new Map<number, Int32Array>();
  for (const u of users) {
    const rated = new Set(trainPart(d.sequences[u] as Int32Array));
    const neg = new Int32Array(negatives);
    for (let k = 0; k < negatives; k++) {
      let t = 1 + Math.floor(rand() * n);
      while (rated.has(t)) t = 1 + Math.floor(rand() * n);
      neg[k] = t;
    }
    out.set(u, neg);
  }
  return out;
}

export interface EvaluateOptions {
  split: 'valid' | 'test';
  protocol: Protocol;
  /**
   * Exclude the user's earlier items from full ranking (default true: the published protocol). Shops
   * where people re-view and re-buy items are better measured without it.
   */
  excludeHistory?: boolean;
  batchSize?: number;
  /** Evaluate only these users (default: every user with >= 3 items, or a sample for `sampled`). */
  users?: readonly number[];
  /** Collects the top `topN` items per user (earlier items excluded), for --predictions-out. */
  topN?: number;
  onTop?: (user: number, items: number[]) => void;
}

const NO_ITEMS = new Int32Array(0);

export async function evaluate(scorer: SequenceScorer, d: SequenceDataset, opts: EvaluateOptions): Promise<Metrics> {
  let users = opts.users ? [...opts.users] : evaluableUsers(d);
  let negatives: Map<number, Int32Array> | undefined;
  if (opts.protocol.kind === 'sampled') {
    if (!opts.users && users.length > opts.protocol.maxUsers)
      users = shuffleInPlace(users, mulberry32(opts.protocol.seed)).slice(0, opts.protocol.maxUsers);
    negatives = sampleNegatives(d, users, opts.protocol.negatives, opts.protocol.seed + 1);
  }
  // Sorting by history length keeps batches uniform (much faster for padded models).
  const order = [...users].sort((a, b) => (d.sequences[a]?.length ?? 0) - (d.sequences[b]?.length ?? 0));
  const acc = new Accumulator();
  const bs = opts.batchSize ?? 512;
  for (let start = 0; start < order.length; start += bs) {
    const batch = order.slice(start, start + bs);
    const hts = batch.map((u) => historyAndTarget(d.sequences[u] as Int32Array, opts.split));
    const scores = await scorer.scoreBatch(hts.map((h) => h.history));
    batch.forEach((u, k) => {
      const s = scores[k] as Float32Array;
      const { history, target } = hts[k] as { history: Int32Array; target: number };
      const exclude = opts.excludeHistory === false ? NO_ITEMS : history;
      const rank = negatives ? rankSampled(s, target, negatives.get(u) as Int32Array) : rankFull(s, target, exclude);
      acc.add(rank);
      if (opts.onTop && opts.topN) opts.onTop(u, topItems(s, opts.topN, exclude));
    });
  }
  return acc.result();
}

/** The `n` best items (highest score first), excluding `exclude` and padding. */
export function topItems(scores: Float32Array, n: number, exclude: Int32Array): number[] {
  const excluded = new Set(exclude);
  const best: Array<[number, number]> = [];
  for (let i = 1; i < scores.length; i++) {
    if (excluded.has(i)) continue;
    const s = scores[i] as number;
    if (best.length < n) {
      best.push([i, s]);
      if (best.length === n) best.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    } else if (s > (best[n - 1] as [number, number])[1]) {
      let j = n - 1;
      while (j > 0 && (best[j - 1] as [number, number])[1] < s) j--;
      best.splice(j, 0, [i, s]);
      best.pop();
    }
  }
  if (best.length < n) best.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return best.map(([i]) => i);
}
