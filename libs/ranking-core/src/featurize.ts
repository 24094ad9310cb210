import { RANKER_DIM, RANKER_FEATURES, writeRankerFeatures } from '@aisle/ml';
import type { Candidate } from './candidates';
import type { CatalogPort, ItemStatsPort, RankingItem, UserProfile } from './ports';

/** What featurization reads once per request rather than once per candidate. */
export interface UserSignals {
  user: UserProfile | undefined;
  /** Affinity per category, relative to the strongest subcategory (or category), 0..1. */
  affinity: ReadonlyMap<string, number>;
  lastCategory: string | undefined;
}

export function userSignals(user: UserProfile | undefined, catalog: CatalogPort): UserSignals {
  if (!user) return { user, affinity: new Map(), lastCategory: undefined };
  const top = user.affinity.find((a) => a.category.includes(' > '))?.score ?? user.affinity[0]?.score ?? 0;
  const affinity = new Map<string, number>();
  if (top > 0) for (const a of user.affinity) if (!affinity.has(a.category)) affinity.set(a.category, a.score / top);
  const last = user.recent[user.recent.length - 1]?.itemId;
  return { user, affinity, lastCategory: last !== undefined ? catalog.get(last)?.category : undefined };
}

/**
 * Row-major [rows, RANKER_DIM] matrices reused across requests, so that featurization allocates
 * nothing in the steady state. A matrix is held until its request released it (the ranker may read it
 * on another thread meanwhile).
 */
export class FeatureMatrixPool {
  private readonly free: Float32Array[] = [];

  constructor(private readonly keep = 8) {}

  acquire(rows: number): Float32Array {
    const need = Math.max(1, rows) * RANKER_DIM;
    const i = this.free.findIndex((b) => b.length >= need);
    const buf =
      i >= 0 ? (this.free.splice(i, 1)[0] as Float32Array) : new Float32Array(2 ** Math.ceil(Math.log2(need)));
    return buf.subarray(0, rows * RANKER_DIM);
  }

  release(matrix: Float32Array): void {
    if (this.free.length < this.keep) this.free.push(new Float32Array(matrix.buffer));
  }
}

/** Writes the ranker features of `ids` (rows in that order; `items[i]` is the catalog entry of `ids[i]`) into `matrix`. */
export function featurize(
  ids: readonly string[],
  items: ReadonlyArray<RankingItem | undefined>,
  candidates: (id: string) => Candidate,
  stats: ItemStatsPort,
  signals: UserSignals,
  matrix: Float32Array,
): void {
  const user = signals.user;
  const historyLength = user?.recent.length ?? 0;
  ids.forEach((id, row) => {
    const c = candidates(id);
    const e = items[row];
    const s = stats.stats(id);
    writeRankerFeatures(
      {
        seqScore: c.seqScore,
        seqRank: c.seqRank,
        covisScore: c.covisScore,
        covisRank: c.covisRank,
        popularity: s?.popularity7d,
        ctr: s?.ctr,
        conversionRate: s?.conversionRate,
        categoryAffinity: e ? (signals.affinity.get(e.category) ?? 0) : 0,
        price: e?.price,
        userPriceMean: user?.price?.mean,
        userPriceStd: user?.price?.std,
        textScore: c.textScore,
        lexicalScore: c.lexical,
        historyLength,
        sameCategoryAsLast: e !== undefined && e.category === signals.lastCategory,
      },
      matrix,
      row * RANKER_DIM,
    );
  });
}

/** One row as named features (for `explain`). */
export function namedFeatures(matrix: Float32Array, row: number): Record<string, number> {
  const out: Record<string, number> = {};
  RANKER_FEATURES.forEach((f, j) => (out[f] = matrix[row * RANKER_DIM + j] as number));
  return out;
}
