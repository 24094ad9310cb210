/**
 * The one place that decides whether a trained candidate may become the active version. Each check
 * runs in order and the first that fails is the reason given (in the log and in the
 * `aisle.models.v1.rejected` announcement): enough held-out cases, a finite metric, not below the active
 * version, and (for the models that have one) above the simple baseline on the same slice: the rule
 * `aisle eval` selects by (a model that does not beat item co-visitation is not worth serving; the
 * ranking service falls back to co-visitation without it).
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
  /** The simple baseline's value on the same slice and metric (item co-visitation), where there is one. */
  baseline?: { name: string; value: number } | undefined;
}

export interface GateOptions {
  /** Fewer held-out cases than this cannot tell a good model from a bad one. */
  minHeldOutCases: number;
  /** A candidate at most this far below the active version still replaces it. */
  tolerance: number;
  /** The candidate must beat the baseline (strictly), when one is given. */
  beatBaseline: boolean;
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
  const b = s.baseline;
  if (opts.beatBaseline && b && Number.isFinite(b.value) && !(s.candidate > b.value))
    return {
      publish: false,
      reason: `held-out ${s.metric} ${num(s.candidate)} does not beat ${b.name}'s ${num(b.value)} on the same slice`,
    };
  const versus =
    s.active === undefined || !Number.isFinite(s.active)
      ? 'no comparable active version'
      : `held-out ${s.metric} ${num(s.candidate)} vs the active version's ${num(s.active)}`;
  return { publish: true, reason: b ? `${versus}; ${b.name} ${num(b.value)}` : versus };
}
