import type { ArmRunRecord, JoinedRequest, Outcome, OutcomeType } from './analysis';
import { unitOf } from './assignment';
import type { Experiment } from './definition';
import { interleave, route } from './router';

/**
 * A simulated experiment: users arrive, are routed exactly as ranking routes them (sticky hash or team
 * draft), see the arms' lists and react. Produces the joined requests the analysis reads, so tests and
 * benchmarks exercise the real assignment, interleaving and statistics end to end.
 */

export interface SimulatedReaction {
  itemId: string;
  type: OutcomeType;
  /** Price x quantity for purchases. */
  revenue: number;
  delayMs: number;
}

export interface SimulationSpec {
  experiment: Experiment;
  /** User ids requests are drawn from. */
  users: readonly string[];
  /** Relative request rates of `users` (uniform when absent). */
  userWeights?: readonly number[];
  requests: number;
  limit: number;
  start: number;
  /** Time between requests. */
  intervalMs: number;
  /** Uniform draws in [0, 1) (seeded by the caller). */
  random: () => number;
  /** The ranked list an arm gives a user. */
  rank(arm: string, userId: string, limit: number): string[];
  /** What a user does with a shown list. */
  react(userId: string, shown: readonly string[]): SimulatedReaction[];
  /** How an arm's ranking went (default: fast, fine). A failed arm falls back to the control's list. */
  run?(arm: string): Omit<ArmRunRecord, 'arm'>;
  /** Replaces the hash assignment (to simulate a broken one); undefined = holdout. */
  assign?(unit: string, hashed: string | undefined): string | undefined;
  /** Request id prefix (default 'sim'). */
  idPrefix?: string;
}

const OK_RUN = { latencyMs: 5, degraded: false, failed: false };

export function simulateExperiment(spec: SimulationSpec): JoinedRequest[] {
  const e = spec.experiment;
  const prefix = spec.idPrefix ?? 'sim';
  const out: JoinedRequest[] = [];
  const cumulative: number[] = [];
  let total = 0;
  for (let u = 0; u < spec.users.length; u++) cumulative.push((total += spec.userWeights?.[u] ?? 1));
  const drawUser = (): string => {
    const x = spec.random() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    return spec.users[lo] as string;
  };
  for (let i = 0; i < spec.requests; i++) {
    const userId = drawUser();
    const unit = unitOf(userId, '');
    const requestId = `${prefix}-${i}`;
    const servedAt = spec.start + i * spec.intervalMs;
    const r = route(e, unit);
    let items: Array<{ itemId: string; team: string }>;
    let arm = '';
    let interleaved = false;
    const runs: ArmRunRecord[] = [];
    const runOf = (name: string): ArmRunRecord => ({ arm: name, ...(spec.run?.(name) ?? OK_RUN) });
    if (r.kind === 'interleave') {
      const [ra, rb] = [runOf(r.a), runOf(r.b)];
      runs.push(ra, rb);
      const list = (name: string) => spec.rank(name, userId, spec.limit).map((itemId) => ({ itemId }));
      if (ra.failed || rb.failed) {
        const alone = ra.failed ? (rb.failed ? e.control : r.b) : r.a;
        items = list(alone).map((x) => ({ ...x, team: '' }));
      } else {
        interleaved = true;
        items = interleave(e, requestId, { name: r.a, items: list(r.a) }, { name: r.b, items: list(r.b) }, spec.limit);
      }
    } else {
      const hashed = r.kind === 'ab' ? r.arm : undefined;
      const assigned = spec.assign ? spec.assign(unit, hashed) : hashed;
      if (assigned === undefined) continue;
      arm = assigned;
      const run = runOf(arm);
      runs.push(run);
      const servedArm = run.failed ? e.control : arm;
      items = spec.rank(servedArm, userId, spec.limit).map((itemId) => ({ itemId, team: '' }));
    }
    const outcomes: Outcome[] = spec
      .react(
        userId,
        items.map((x) => x.itemId),
      )
      .map((x, k) => ({
        eventId: `${requestId}-${k}`,
        type: x.type,
        itemId: x.itemId,
        occurredAt: servedAt + x.delayMs,
        revenue: x.revenue,
      }));
    out.push({ served: { requestId, unit, servedAt, arm, interleaved, items, runs }, outcomes });
  }
  return out;
}
