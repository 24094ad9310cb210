import type { SessionCase } from './sessions';
import type { SessionRecommender } from './session-models';

export interface SessionMetrics {
  /** P@20 = hit rate at 20, in percent. */
  p20: number;
  /** MRR@20 in percent (0 beyond rank 20). */
  mrr20: number;
  cases: number;
}

/** P@20 and MRR@20 over `cases`, every item ranked (repeats allowed); `onTop` sees each case's list. */
export function evaluateSessions(
  rec: SessionRecommender,
  cases: readonly SessionCase[],
  opts: { k?: number; onTop?: (caseIndex: number, items: number[]) => void } = {},
): SessionMetrics {
  const k = Math.max(20, opts.k ?? 20);
  const ranks = cases.map((c, idx) => {
    const top = rec.recommend(c.prefix, k);
    opts.onTop?.(idx, top);
    return c.target > 0 ? top.indexOf(c.target) : -1;
  });
  return sessionMetricsOfRanks(ranks);
}

/** P@20 and MRR@20 (percent) from each case's 0-based rank of its target (-1: not ranked). */
export function sessionMetricsOfRanks(ranks: readonly number[]): SessionMetrics {
  let hits = 0;
  let rr = 0;
  for (const rank of ranks)
    if (rank >= 0 && rank < 20) {
      hits++;
      rr += 1 / (rank + 1);
    }
  const n = Math.max(1, ranks.length);
  return { p20: (100 * hits) / n, mrr20: (100 * rr) / n, cases: ranks.length };
}
