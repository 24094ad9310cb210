/**
 * The one place that decides whether a trained candidate may become the active version. Each check
 * runs in order and the first that fails is the reason given (in the log and in the
 * `aisle.models.v1.rejected` announcement); more checks (such as "beats a baseline") belong here too.
 */

export interface HeldOutScore {
  /** The primary metric's name (ndcg@10, mrr, roc_auc). */
  metric: string;
  /** The candidate's value on the held-out slice. */
  candidate: number;
  /** Held-out cases it was measured on. */
  cases: number;
  /** The active version's value on the same slice, when there is an active version that could be scored. */
  active: number | undefined;
}

export interface GateOptions {
  /** Fewer held-out cases than this cannot tell a good model from a bad one. */
  minHeldOutCases: number;
  /** A candidate at most this far below the active version still replaces it. */
  tolerance: number;
}

export type GateDecision = { publish: true; reason: string } | { publish: false; reason: string };

const num = (x: number) => (Number.isFinite(x) ? String(Math.round(x * 10_000) / 10_000) : String(x));

export function qualityGate(s: HeldOutScore, opts: GateOptions): GateDecision {
  if (s.cases < opts.minHeldOutCases)
    return {
      publish: false,
      reason: `held-out slice has ${s.cases} case(s), fewer than the ${opts.minHeldOutCases} needed to judge a model`,
    };
  if (!Number.isFinite(s.candidate))
    return { publish: false, reason: `held-out ${s.metric} is ${num(s.candidate)}, not a finite number` };
  // An active version whose own metric is not a number (published before this gate existed) is no bar.
  if (s.active !== undefined && Number.isFinite(s.active) && s.candidate < s.active - opts.tolerance)
    return {
      publish: false,
      reason: `held-out ${s.metric} ${num(s.candidate)} is more than ${opts.tolerance} below the active version's ${num(s.active)}`,
    };
  return {
    publish: true,
    reason:
      s.active === undefined || !Number.isFinite(s.active)
        ? 'no comparable active version'
        : `held-out ${s.metric} ${num(s.candidate)} vs the active version's ${num(s.active)}`,
  };
}
