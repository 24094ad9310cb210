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
  let hits = 0;
  let rr = 0;
  cases.forEach((c, idx) => {
    const top = rec.recommend(c.prefix, k);
    const rank = c.target > 0 ? top.indexOf(c.target) : -1;
    if (rank >= 0 && rank < 20) {
      hits++;
      rr += 1 / (rank + 1);
    }
    opts.onTop?.(idx, top);
  });
  const n = Math.max(1, cases.length);
  return { p20: (100 * hits) / n, mrr20: (100 * rr) / n, cases: cases.length };
}
