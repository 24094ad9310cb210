/**
 * Exponentially decayed sums in event time. Adding an event at time t to a sum kept "as of" time ref is
 * commutative: the result does not depend on arrival order (up to float rounding), which is what makes
 * replayed history give the same features as live traffic.
 */
export interface Decayed {
  /** Value as of `t`. */
  v: number;
  /** Reference time (ms): the latest event time added. */
  t: number;
}

export const DAY_MS = 86_400_000;

export function addDecayed(d: Decayed | undefined, at: number, weight: number, tauMs: number): Decayed {
  if (!d) return { v: weight, t: at };
  if (at >= d.t) return { v: d.v * Math.exp(-(at - d.t) / tauMs) + weight, t: at };
  return { v: d.v + weight * Math.exp(-(d.t - at) / tauMs), t: d.t };
}

/** The value as of `now` (never grown backwards: a `now` before the reference returns the stored value). */
export function decayedAt(d: Decayed | undefined, now: number, tauMs: number): number {
  if (!d) return 0;
  return now >= d.t ? d.v * Math.exp(-(now - d.t) / tauMs) : d.v;
}

/** Time constant for a half-life. */
export function tauForHalfLife(halfLifeMs: number): number {
  return halfLifeMs / Math.LN2;
}
