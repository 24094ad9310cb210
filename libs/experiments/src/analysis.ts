import { experimentV1 } from '@aisle/contracts';
import { ALPHA, Design, experimentState, isInterleaving, Metric, SRM_ALPHA, type Experiment } from './definition';
import { interleavingOutcome, NO_TEAM, type InterleavingOutcome } from './interleaving';
import {
  chiSquareGoodnessOfFit,
  compareRatios,
  quantile,
  RatioSums,
  ratioInterval,
  signTest,
  wilson,
  type Interval,
} from './stats';

/**
 * The analysis of one experiment: a pure function of its served requests and the outcomes joined to them
 * (by request id and item), so that replaying the streams, in any order and any number of times, gives the
 * same result. Units (users, or sessions) are the independent draws: every interval is clustered by unit.
 */

export type OutcomeType = 'click' | 'add_to_cart' | 'purchase';
export const OUTCOME_TYPES: readonly OutcomeType[] = ['click', 'add_to_cart', 'purchase'];

export function isOutcomeType(t: string): t is OutcomeType {
  return (OUTCOME_TYPES as readonly string[]).includes(t);
}

export interface Outcome {
  eventId: string;
  type: OutcomeType;
  itemId: string;
  occurredAt: number;
  /** Price x quantity for purchases; 0 otherwise. */
  revenue: number;
}

export interface ArmRunRecord {
  arm: string;
  latencyMs: number;
  degraded: boolean;
  failed: boolean;
}

/** What the analysis keeps of one served response in an experiment. */
export interface ServedRecord {
  requestId: string;
  /** See `unitOf`. */
  unit: string;
  servedAt: number;
  /** A/B: the unit's arm; interleaving: ''. */
  arm: string;
  /** True when both arms' lists were merged (false when one arm failed and the other served alone). */
  interleaved: boolean;
  /** In served order; `team` is the contributing arm for interleaving (NO_TEAM for fillers), '' for A/B. */
  items: Array<{ itemId: string; team: string }>;
  runs: ArmRunRecord[];
}

export interface JoinedRequest {
  served: ServedRecord;
  outcomes: Outcome[];
}

/** Outcomes may be stamped slightly before the impression by another clock. */
export const CLOCK_SKEW_MS = 60_000;
/** Most points on the timeline. */
export const MAX_TIMELINE_POINTS = 48;
const STEPS_MS = [60_000, 300_000, 900_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000];

/** Whether an outcome counts for a request: an item it showed, within the attribution window. */
export function attributable(served: ServedRecord, o: Outcome, windowMs: number): boolean {
  return (
    o.occurredAt >= served.servedAt - CLOCK_SKEW_MS &&
    o.occurredAt <= served.servedAt + windowMs &&
    served.items.some((i) => i.itemId === o.itemId)
  );
}

interface UnitSums {
  impressions: number;
  clicks: number;
  carts: number;
  purchases: number;
  revenue: number;
}

const emptySums = (): UnitSums => ({ impressions: 0, clicks: 0, carts: 0, purchases: 0, revenue: 0 });

interface PreferenceSums {
  winsA: number;
  winsB: number;
  ties: number;
}

interface RequestState {
  served: ServedRecord;
  /** Distinct (type, item) credited so far. */
  seen: Set<string>;
  /** Interleaving: credited clicks and purchases per team. */
  clicks: [number, number];
  purchases: [number, number];
}

/** Running per-arm, per-unit sums as requests and outcomes arrive in event time. */
class Accumulator {
  /** arm -> unit -> sums. */
  readonly sums = new Map<string, Map<string, UnitSums>>();
  readonly requests = new Map<string, RequestState>();
  /** Interleaving, per unit: outcomes of its requests by clicks and by purchases. */
  readonly clickPrefs = new Map<string, PreferenceSums>();
  readonly purchasePrefs = new Map<string, PreferenceSums>();
  interleavedRequests = 0;
  readonly firstPicks = new Map<string, number>();

  constructor(
    private readonly armA: string,
    private readonly armB: string,
  ) {}

  private unitSums(arm: string, unit: string): UnitSums {
    let byUnit = this.sums.get(arm);
    if (!byUnit) this.sums.set(arm, (byUnit = new Map<string, UnitSums>()));
    let s = byUnit.get(unit);
    if (!s) byUnit.set(unit, (s = emptySums()));
    return s;
  }

  /** The arm an item of a request counts for: the A/B arm, or the team that contributed it. */
  private armOf(served: ServedRecord, itemId: string): string | undefined {
    if (!served.interleaved) return served.arm || undefined;
    const team = served.items.find((i) => i.itemId === itemId)?.team;
    return team && team !== NO_TEAM ? team : undefined;
  }

  addRequest(served: ServedRecord): void {
    this.requests.set(served.requestId, { served, seen: new Set(), clicks: [0, 0], purchases: [0, 0] });
    if (served.interleaved) {
      this.interleavedRequests++;
      const first = served.items[0]?.team;
      if (first === this.armA || first === this.armB) this.firstPicks.set(first, (this.firstPicks.get(first) ?? 0) + 1);
      for (const team of [this.armA, this.armB]) {
        const shown = served.items.filter((i) => i.team === team).length;
        this.unitSums(team, served.unit).impressions += shown;
      }
    } else if (served.arm) {
      this.unitSums(served.arm, served.unit).impressions += served.items.length;
    }
  }

  addOutcome(requestId: string, o: Outcome): void {
    const r = this.requests.get(requestId);
    if (!r) return;
    const key = `${o.type}\u001f${o.itemId}`;
    const firstOfKind = !r.seen.has(key);
    r.seen.add(key);
    const arm = this.armOf(r.served, o.itemId);
    if (!arm) return;
    const s = this.unitSums(arm, r.served.unit);
    if (o.type === 'purchase') s.revenue += o.revenue;
    if (!firstOfKind) return;
    if (o.type === 'click') s.clicks++;
    else if (o.type === 'add_to_cart') s.carts++;
    else s.purchases++;
    if (!r.served.interleaved || (o.type !== 'click' && o.type !== 'purchase')) return;
    const credit = o.type === 'click' ? r.clicks : r.purchases;
    const prefs = o.type === 'click' ? this.clickPrefs : this.purchasePrefs;
    const before = interleavingOutcome(credit[0], credit[1]);
    credit[arm === this.armA ? 0 : 1]++;
    const after = interleavingOutcome(credit[0], credit[1]);
    if (before === after) return;
    let p = prefs.get(r.served.unit);
    if (!p) prefs.set(r.served.unit, (p = { winsA: 0, winsB: 0, ties: 0 }));
    count(p, before, -1);
    count(p, after, 1);
  }
}

function count(p: PreferenceSums, outcome: InterleavingOutcome, delta: number): void {
  if (outcome === 'a') p.winsA += delta;
  else if (outcome === 'b') p.winsB += delta;
  else if (outcome === 'tie') p.ties += delta;
}

const METRICS: ReadonlyArray<{
  metric: experimentV1.Metric;
  y: (s: UnitSums) => number;
  scale: number;
}> = [
  { metric: Metric.METRIC_CTR, y: (s) => s.clicks, scale: 1 },
  { metric: Metric.METRIC_ADD_TO_CART_RATE, y: (s) => s.carts, scale: 1 },
  { metric: Metric.METRIC_CONVERSION_RATE, y: (s) => s.purchases, scale: 1 },
  { metric: Metric.METRIC_REVENUE_PER_MILLE, y: (s) => s.revenue, scale: 1000 },
];

function ratioSums(byUnit: ReadonlyMap<string, UnitSums> | undefined, y: (s: UnitSums) => number): RatioSums {
  const r = new RatioSums();
  for (const s of byUnit?.values() ?? []) r.add(y(s), s.impressions);
  return r;
}

const estimate = (i: Interval): experimentV1.Estimate => ({ value: i.value, lower: i.lower, upper: i.upper });

function armResult(arm: string, byUnit: ReadonlyMap<string, UnitSums> | undefined): experimentV1.ArmResult {
  const total = emptySums();
  for (const s of byUnit?.values() ?? []) {
    total.impressions += s.impressions;
    total.clicks += s.clicks;
    total.carts += s.carts;
    total.purchases += s.purchases;
    total.revenue += s.revenue;
  }
  const [ctr, atc, cvr, rpm] = METRICS.map((m) =>
    estimate(ratioInterval(ratioSums(byUnit, m.y), { scale: m.scale, floor: 0 })),
  );
  return experimentV1.ArmResult.fromPartial({
    arm,
    units: byUnit?.size ?? 0,
    impressions: total.impressions,
    clicks: total.clicks,
    addToCarts: total.carts,
    purchases: total.purchases,
    revenue: total.revenue,
    ctr,
    addToCartRate: atc,
    conversionRate: cvr,
    revenuePerMille: rpm,
  });
}

function comparisons(e: Experiment, acc: Accumulator): experimentV1.Comparison[] {
  if (isInterleaving(e)) return [];
  const control = acc.sums.get(e.control);
  const out: experimentV1.Comparison[] = [];
  for (const arm of e.arms) {
    if (arm.name === e.control) continue;
    const treatment = acc.sums.get(arm.name);
    for (const m of METRICS) {
      const c = compareRatios(ratioSums(treatment, m.y), ratioSums(control, m.y), { scale: m.scale });
      out.push({
        metric: m.metric,
        arm: arm.name,
        control: e.control,
        difference: estimate(c.difference),
        relativeLift: estimate(c.relativeLift),
        pValue: c.pValue,
      });
    }
  }
  return out;
}

function preference(
  prefs: ReadonlyMap<string, PreferenceSums>,
  armA: string,
  armB: string,
  alpha: number,
): experimentV1.Preference {
  let winsA = 0;
  let winsB = 0;
  let ties = 0;
  // Delta = sum(winsA + ties/2) / sum(decided) - 1/2, a ratio over units: clustered like every metric.
  const sums = new RatioSums();
  for (const p of prefs.values()) {
    winsA += p.winsA;
    winsB += p.winsB;
    ties += p.ties;
    const decided = p.winsA + p.winsB + p.ties;
    if (decided > 0) sums.add(p.winsA + p.ties / 2, decided);
  }
  const share = ratioInterval(sums);
  const pValue = signTest(winsA, winsA + winsB);
  const delta = share.value - 0.5;
  return {
    winsA,
    winsB,
    ties,
    preference: { value: delta, lower: share.lower - 0.5, upper: share.upper - 0.5 },
    pValue,
    winner: pValue < alpha && winsA !== winsB ? (winsA > winsB ? armA : armB) : '',
  };
}

function interleavingResult(
  e: Experiment,
  acc: Accumulator,
  alpha: number,
): experimentV1.InterleavingResult | undefined {
  if (!isInterleaving(e)) return undefined;
  const [a, b] = e.arms.map((x) => x.name) as [string, string];
  return {
    armA: a,
    armB: b,
    requests: acc.interleavedRequests,
    clicks: preference(acc.clickPrefs, a, b, alpha),
    purchases: preference(acc.purchasePrefs, a, b, alpha),
  };
}

function sampleRatio(e: Experiment, acc: Accumulator): experimentV1.SampleRatio {
  const interleaving = isInterleaving(e);
  const observed = e.arms.map((a) =>
    interleaving ? (acc.firstPicks.get(a.name) ?? 0) : (acc.sums.get(a.name)?.size ?? 0),
  );
  const shares = e.arms.map((a) => a.trafficShare);
  const fit = chiSquareGoodnessOfFit(observed, shares);
  const total = observed.reduce((x, y) => x + y, 0);
  const shareSum = shares.reduce((x, y) => x + y, 0);
  return {
    mismatch: fit.pValue < SRM_ALPHA,
    chiSquare: fit.chiSquare,
    degreesOfFreedom: fit.degreesOfFreedom,
    pValue: fit.pValue,
    counts: e.arms.map((a, i) => ({
      arm: a.name,
      observed: observed[i] ?? 0,
      expected: (total * a.trafficShare) / shareSum,
    })),
    counted: interleaving ? 'first_picks' : 'units',
  };
}

interface RunStats {
  requests: number;
  failed: number;
  degraded: number;
  latencies: number[];
}

function runStats(requests: Iterable<RequestState>): Map<string, RunStats> {
  const out = new Map<string, RunStats>();
  for (const r of requests)
    for (const run of r.served.runs) {
      let s = out.get(run.arm);
      if (!s) out.set(run.arm, (s = { requests: 0, failed: 0, degraded: 0, latencies: [] }));
      s.requests++;
      if (run.failed) s.failed++;
      if (run.degraded) s.degraded++;
      if (Number.isFinite(run.latencyMs)) s.latencies.push(run.latencyMs);
    }
  return out;
}

/**
 * Guardrails judge each arm on its own runs once it has `min_requests`: a rate trips when even the lower
 * end of its 95 % (Wilson) interval is above the limit, so noise alone does not stop an experiment.
 */
function guardrails(e: Experiment, stats: ReadonlyMap<string, RunStats>): experimentV1.GuardrailCheck[] {
  const g = experimentV1.Guardrails.fromPartial(e.guardrails ?? {});
  const out: experimentV1.GuardrailCheck[] = [];
  for (const arm of e.arms) {
    const s = stats.get(arm.name);
    if (!s || s.requests < g.minRequests) continue;
    const rate = (check: string, k: number, limit: number) => {
      const w = wilson(k, s.requests);
      const tripped = w.lower > limit;
      out.push({
        arm: arm.name,
        check,
        value: w.value,
        limit,
        tripped,
        reason: tripped
          ? `arm '${arm.name}': ${check.replace('_', ' ')} ${w.value.toFixed(3)} (95 % CI ${w.lower.toFixed(3)}-${w.upper.toFixed(3)}) ` +
            `over ${s.requests} requests is above the limit ${limit}`
          : '',
      });
    };
    rate('error_rate', s.failed, g.maxErrorRate);
    rate('degraded_rate', s.degraded, g.maxDegradedRate);
    if (g.maxP95LatencyMs > 0) {
      const p95 = quantile(s.latencies, 0.95);
      const tripped = p95 > g.maxP95LatencyMs;
      out.push({
        arm: arm.name,
        check: 'latency_p95_ms',
        value: p95,
        limit: g.maxP95LatencyMs,
        tripped,
        reason: tripped
          ? `arm '${arm.name}': p95 latency ${p95.toFixed(1)} ms over ${s.requests} requests is above the limit ${g.maxP95LatencyMs} ms`
          : '',
      });
    }
  }
  return out;
}

/**
 * The winner on the primary metric: interleaving, the preferred arm; A/B, the arm that beats the control
 * with the largest lift at alpha / (arms - 1) (Bonferroni), or the control when every other arm is
 * significantly worse.
 */
function winnerOf(
  e: Experiment,
  comps: readonly experimentV1.Comparison[],
  inter: experimentV1.InterleavingResult | undefined,
): string {
  if (inter) return inter.clicks?.winner ?? '';
  const alpha = ALPHA / Math.max(1, e.arms.length - 1);
  const primary = comps.filter((c) => c.metric === e.primaryMetric);
  const better = primary
    .filter((c) => c.pValue < alpha && (c.difference?.value ?? 0) > 0)
    .sort((x, y) => (y.relativeLift?.value ?? 0) - (x.relativeLift?.value ?? 0));
  if (better[0]) return better[0].arm;
  const worse = primary.filter((c) => c.pValue < alpha && (c.difference?.value ?? 0) < 0);
  return primary.length > 0 && worse.length === primary.length ? e.control : '';
}

function timelineStep(spanMs: number): number {
  for (const s of STEPS_MS) if (spanMs / s <= MAX_TIMELINE_POINTS - 1) return s;
  return Math.ceil(spanMs / (MAX_TIMELINE_POINTS - 1) / 86_400_000) * 86_400_000;
}

type TimedEntry =
  { at: number; kind: 0; served: ServedRecord } | { at: number; kind: 1; requestId: string; outcome: Outcome };

/** Every figure of an experiment at the time of its newest counted data (event time, not wall-clock). */
export function analyzeExperiment(
  e: Experiment,
  requests: Iterable<JoinedRequest>,
  now: number,
): experimentV1.ExperimentResult {
  const windowMs = e.attributionWindowSeconds * 1000;
  const entries: TimedEntry[] = [];
  let unattributed = 0;
  for (const r of requests) {
    entries.push({ at: r.served.servedAt, kind: 0, served: r.served });
    const seen = new Set<string>();
    for (const o of r.outcomes) {
      if (seen.has(o.eventId)) continue;
      seen.add(o.eventId);
      if (attributable(r.served, o, windowMs))
        entries.push({ at: o.occurredAt, kind: 1, requestId: r.served.requestId, outcome: o });
      else unattributed++;
    }
  }
  // One total order (time, requests before outcomes, then ids): the same input gives the same sweep.
  entries.sort((x, y) => {
    if (x.at !== y.at) return x.at - y.at;
    if (x.kind !== y.kind) return x.kind - y.kind;
    const ix = x.kind === 0 ? x.served.requestId : `${x.requestId}\u001f${x.outcome.eventId}`;
    const iy = y.kind === 0 ? y.served.requestId : `${y.requestId}\u001f${y.outcome.eventId}`;
    return ix < iy ? -1 : ix > iy ? 1 : 0;
  });
  const [armA = '', armB = ''] = e.arms.map((a) => a.name);
  const acc = new Accumulator(armA, armB);
  const first = entries[0]?.at;
  const asOf = entries[entries.length - 1]?.at;
  const timeline: experimentV1.ResultPoint[] = [];
  const point = (at: number): experimentV1.ResultPoint => ({
    time: new Date(at),
    arms: e.arms.map((a) => armResult(a.name, acc.sums.get(a.name))),
    comparisons: comparisons(e, acc),
    interleaving: interleavingResult(e, acc, ALPHA),
  });
  const step = first !== undefined && asOf !== undefined ? timelineStep(asOf - first) : 0;
  let nextCut = first !== undefined && step > 0 ? (Math.floor(first / step) + 1) * step : Number.POSITIVE_INFINITY;
  for (const entry of entries) {
    while (entry.at >= nextCut) {
      timeline.push(point(nextCut));
      nextCut += step;
    }
    if (entry.kind === 0) acc.addRequest(entry.served);
    else acc.addOutcome(entry.requestId, entry.outcome);
  }
  const final = asOf !== undefined ? point(asOf) : undefined;
  if (final) timeline.push(final);

  const stats = runStats(acc.requests.values());
  const arms = final?.arms ?? e.arms.map((a) => armResult(a.name, undefined));
  for (const arm of arms) {
    const s = stats.get(arm.arm);
    const def = e.arms.find((a) => a.name === arm.arm);
    arm.requests = s?.requests ?? 0;
    arm.errorRate = estimate(wilson(s?.failed ?? 0, s?.requests ?? 0));
    arm.degradedRate = estimate(wilson(s?.degraded ?? 0, s?.requests ?? 0));
    arm.latencyP95Ms = quantile(s?.latencies ?? [], 0.95);
    arm.expectedShare = def?.trafficShare ?? 0;
  }
  const comps = final?.comparisons ?? [];
  const inter = final?.interleaving ?? interleavingResult(e, acc, ALPHA);
  return {
    tenant: e.tenant,
    experimentId: e.id,
    design: e.design === Design.DESIGN_INTERLEAVING ? Design.DESIGN_INTERLEAVING : Design.DESIGN_AB,
    state: experimentState(e, now),
    stopReason: e.stopReason,
    asOf: asOf !== undefined ? new Date(asOf) : undefined,
    primaryMetric: e.primaryMetric,
    alpha: ALPHA,
    control: e.control,
    arms,
    comparisons: comps,
    interleaving: inter,
    sampleRatio: sampleRatio(e, acc),
    guardrails: guardrails(e, stats),
    winner: winnerOf(e, comps, inter),
    timeline,
    unattributedOutcomes: unattributed,
  };
}

/** The first tripped guardrail's reason, if any. */
export function trippedGuardrail(result: experimentV1.ExperimentResult): string | undefined {
  return result.guardrails.find((g) => g.tripped)?.reason;
}
