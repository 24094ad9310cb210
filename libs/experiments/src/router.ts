import type { rankingV1 } from '@aisle/contracts';
import { assignArm } from './assignment';
import { assignmentPlan, isInterleaving, isRunning, type Experiment } from './definition';
import { requestCoin, teamDraft } from './interleaving';

/**
 * Which experiment a request belongs to and how it is served: the one routing rule that ranking and the
 * simulations share. At most one experiment runs per (tenant, surface) (Create refuses a second), so a
 * request is in at most one.
 */

export type Route =
  | { kind: 'none' }
  | { kind: 'ab'; experiment: Experiment; arm: string }
  | { kind: 'interleave'; experiment: Experiment; a: string; b: string };

/** The running experiment of a surface, if any. */
export function experimentFor(
  experiments: Iterable<Experiment>,
  tenant: string,
  surface: rankingV1.Surface,
  now: number,
): Experiment | undefined {
  for (const e of experiments) if (e.tenant === tenant && e.surface === surface && isRunning(e, now)) return e;
  return undefined;
}

/** How to serve a request of `unit` (see `unitOf`) under experiment `e`; units in the holdout get 'none'. */
export function route(e: Experiment | undefined, unit: string): Route {
  if (!e) return { kind: 'none' };
  const arm = assignArm(assignmentPlan(e), unit);
  if (arm === undefined) return { kind: 'none' };
  if (isInterleaving(e)) {
    const [a, b] = e.arms.map((x) => x.name) as [string, string];
    return { kind: 'interleave', experiment: e, a, b };
  }
  return { kind: 'ab', experiment: e, arm };
}

/** The team-draft merge of the two arms' lists for one request (reproducible from the request id). */
export function interleave<T extends { itemId: string }>(
  e: Experiment,
  requestId: string,
  a: { name: string; items: readonly T[] },
  b: { name: string; items: readonly T[] },
  limit: number,
): Array<T & { team: string }> {
  return teamDraft(a, b, limit, requestCoin(e.salt, requestId));
}
