import { DEFAULT_TENANT, experimentV1, InvalidArgumentError, rankingV1 } from '@aisle/contracts';
import type { AssignmentPlan } from './assignment';

/**
 * Experiment definitions are `aisle.experiment.v1.Experiment` messages (the KV bucket holds them as proto3
 * JSON). `normalizeExperiment` validates one as submitted, naming the first bad field, and fills in every
 * default, so that readers (ranking, the analysis) never guess.
 */

export type Experiment = experimentV1.Experiment;
export const { Design, State, Metric } = experimentV1;
export const Surface = rankingV1.Surface;

const NAME = /^[a-z0-9_-]+$/;
const TENANT = /^[A-Za-z0-9_-]+$/;
const VERSION = /^[A-Za-z0-9._:+-]+$/;
const DAY_SECONDS = 86_400;
export const MAX_ARMS = 8;
/** Kinds ranking runs in-process: it loads each pinned version ahead and serves it to the arm's requests only. */
export const IN_PROCESS_MODELS = ['ranker', 'search_ranker', 'session'] as const;
export type InProcessModel = (typeof IN_PROCESS_MODELS)[number];
/**
 * Kinds another service runs (sasrec and text_encoder: embedding-inference; churn: churn-prediction):
 * ranking names the arm's version on each of the arm's calls, and that service loads it on first use and
 * answers with it (reporting the version that answered).
 */
export const REMOTE_MODELS = ['sasrec', 'text_encoder', 'churn'] as const;
export type RemoteModel = (typeof REMOTE_MODELS)[number];
/** Model kinds an arm may pin a version of. */
export const PINNABLE_MODELS = [...IN_PROCESS_MODELS, ...REMOTE_MODELS] as const;
export type PinnableModel = (typeof PINNABLE_MODELS)[number];
/**
 * The surfaces on which a pinned kind changes anything (the ranker orders every surface; churn risk feeds
 * the retention rule wherever it applies).
 */
const PIN_SURFACES: Record<PinnableModel, readonly rankingV1.Surface[] | undefined> = {
  ranker: undefined,
  search_ranker: [rankingV1.Surface.SURFACE_SEARCH],
  session: [rankingV1.Surface.SURFACE_RECOMMEND],
  sasrec: [rankingV1.Surface.SURFACE_RECOMMEND, rankingV1.Surface.SURFACE_RANK],
  text_encoder: [rankingV1.Surface.SURFACE_SEARCH, rankingV1.Surface.SURFACE_SIMILAR_ITEMS],
  churn: undefined,
};

export function isPinnable(model: string): model is PinnableModel {
  return (PINNABLE_MODELS as readonly string[]).includes(model);
}

export function isInProcess(model: string): model is InProcessModel {
  return (IN_PROCESS_MODELS as readonly string[]).includes(model);
}

export function isRemote(model: string): model is RemoteModel {
  return (REMOTE_MODELS as readonly string[]).includes(model);
}

function checkPin(field: string, model: string, version: string, surface: rankingV1.Surface): void {
  if (!isPinnable(model)) fail(field, `unknown model '${model}' (pinnable: ${PINNABLE_MODELS.join(', ')})`);
  const surfaces = PIN_SURFACES[model];
  if (surfaces && !surfaces.includes(surface))
    fail(
      field,
      `${model} changes nothing on ${rankingV1.surfaceToJSON(surface)} (it serves ${surfaces.map((s) => rankingV1.surfaceToJSON(s)).join(', ')})`,
    );
  if (!version || version.length > 128 || !VERSION.test(version))
    fail(field, 'a version of 1..128 characters of [A-Za-z0-9._:+-]');
}

export const DEFAULT_GUARDRAILS = {
  maxErrorRate: 0.05,
  maxDegradedRate: 0.25,
  maxP95LatencyMs: 0,
  minRequests: 200,
} as const;
export const DEFAULT_CHURN_RISK_THRESHOLD = 0.5;
/** Significance level of every test the results report. */
export const ALPHA = 0.05;
/** A sample-ratio mismatch is flagged below this p-value (strict: the check runs continuously). */
export const SRM_ALPHA = 0.001;

function fail(field: string, rule: string): never {
  throw new InvalidArgumentError(field, rule);
}

function checkName(field: string, value: string, max: number): void {
  if (!value) fail(field, 'required');
  if (value.length > max) fail(field, `longer than ${max} characters`);
  if (!NAME.test(value)) fail(field, 'only lower-case letters, digits, _ and - are allowed');
}

function checkShare(field: string, value: number, max: number): void {
  if (!Number.isFinite(value) || value < 0 || value > max) fail(field, `must be a number between 0 and ${max}`);
}

const AB_SURFACES = [
  rankingV1.Surface.SURFACE_RECOMMEND,
  rankingV1.Surface.SURFACE_SEARCH,
  rankingV1.Surface.SURFACE_RANK,
  rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
];
const INTERLEAVING_SURFACES = [rankingV1.Surface.SURFACE_RECOMMEND, rankingV1.Surface.SURFACE_SEARCH];

/**
 * Validates a definition as submitted to Create and returns it with defaults filled in and the output-only
 * fields (state, stop reason, create and stop time) reset. Throws InvalidArgumentError naming the field.
 */
export function normalizeExperiment(input: Experiment, now: number): Experiment {
  const e = experimentV1.Experiment.fromPartial(input);
  e.tenant = e.tenant || DEFAULT_TENANT;
  // The tenant is a token of the KV key (`<tenant>.<id>`): no dots, spaces or wildcards.
  if (e.tenant.length > 64 || !TENANT.test(e.tenant))
    fail('experiment.tenant', 'at most 64 characters of [A-Za-z0-9_-]');
  checkName('experiment.id', e.id, 64);
  if (e.description.length > 2000) fail('experiment.description', 'longer than 2000 characters');
  if (e.design !== Design.DESIGN_AB && e.design !== Design.DESIGN_INTERLEAVING)
    fail('experiment.design', 'must be DESIGN_AB or DESIGN_INTERLEAVING');
  const interleaving = e.design === Design.DESIGN_INTERLEAVING;
  const surfaces = interleaving ? INTERLEAVING_SURFACES : AB_SURFACES;
  if (!surfaces.includes(e.surface))
    fail(
      'experiment.surface',
      interleaving ? 'interleaving runs on SURFACE_RECOMMEND or SURFACE_SEARCH' : 'a surface is required',
    );

  if (interleaving && e.arms.length !== 2) fail('experiment.arms', 'interleaving compares exactly 2 arms');
  if (!interleaving && (e.arms.length < 2 || e.arms.length > MAX_ARMS))
    fail('experiment.arms', `an A/B test has 2 to ${MAX_ARMS} arms`);
  const names = new Set<string>();
  e.arms.forEach((arm, i) => {
    const f = `experiment.arms[${i}]`;
    checkName(`${f}.name`, arm.name, 32);
    if (names.has(arm.name)) fail(`${f}.name`, `'${arm.name}' is used by another arm`);
    names.add(arm.name);
    if (!interleaving) checkShare(`${f}.traffic_share`, arm.trafficShare, 1);
    for (const [model, version] of Object.entries(arm.models)) {
      // An unknown key may be anything a caller typed: named as the map, not echoed into a field path.
      checkPin(isPinnable(model) ? `${f}.models.${model}` : `${f}.models`, model, version, e.surface);
    }
    if (arm.rankerDisabled && arm.models['ranker'])
      fail(`${f}.ranker_disabled`, 'cannot disable the ranker and pin its version');
    const rules = experimentV1.RuleSettings.fromPartial(arm.rules ?? {});
    checkShare(`${f}.rules.retention_boost`, rules.retentionBoost, 10);
    checkShare(`${f}.rules.churn_risk_threshold`, rules.churnRiskThreshold, 1);
    if (!Number.isInteger(rules.maxPerCategory) || rules.maxPerCategory < 0 || rules.maxPerCategory > 50)
      fail(`${f}.rules.max_per_category`, 'must be an integer between 0 and 50');
    if (rules.retentionBoost > 0 && rules.churnRiskThreshold === 0)
      rules.churnRiskThreshold = DEFAULT_CHURN_RISK_THRESHOLD;
    arm.rules = rules;
  });
  if (interleaving) {
    for (const arm of e.arms) arm.trafficShare = 0.5;
  } else {
    const total = e.arms.reduce((a, b) => a + b.trafficShare, 0);
    if (total === 0) for (const arm of e.arms) arm.trafficShare = 1 / e.arms.length;
    else if (Math.abs(total - 1) > 1e-6) fail('experiment.arms', `traffic shares sum to ${total}, not 1`);
    else
      e.arms.forEach((arm, i) => {
        if (arm.trafficShare === 0) fail(`experiment.arms[${i}].traffic_share`, 'must be above 0');
      });
  }
  e.control = e.control || (e.arms[0] as experimentV1.Arm).name;
  if (!names.has(e.control)) fail('experiment.control', `'${e.control}' is not one of the arms`);

  checkShare('experiment.holdout', e.holdout, 0.99);
  e.salt = e.salt || e.id;
  if (e.salt.length > 128) fail('experiment.salt', 'longer than 128 characters');

  if (e.primaryMetric === Metric.METRIC_UNSPECIFIED)
    e.primaryMetric = interleaving ? Metric.METRIC_INTERLEAVING_PREFERENCE : Metric.METRIC_CTR;
  if (!Object.values(Metric).includes(e.primaryMetric) || e.primaryMetric === Metric.UNRECOGNIZED)
    fail('experiment.primary_metric', 'unknown metric');
  if (interleaving && e.primaryMetric !== Metric.METRIC_INTERLEAVING_PREFERENCE)
    fail('experiment.primary_metric', 'interleaving measures METRIC_INTERLEAVING_PREFERENCE');
  if (!interleaving && e.primaryMetric === Metric.METRIC_INTERLEAVING_PREFERENCE)
    fail('experiment.primary_metric', 'METRIC_INTERLEAVING_PREFERENCE needs DESIGN_INTERLEAVING');

  e.startTime ??= new Date(now);
  if (Number.isNaN(e.startTime.getTime())) fail('experiment.start_time', 'not a valid time');
  if (e.endTime && !(e.endTime.getTime() > e.startTime.getTime()))
    fail('experiment.end_time', 'must be after start_time');

  const g = experimentV1.Guardrails.fromPartial(e.guardrails ?? {});
  checkShare('experiment.guardrails.max_error_rate', g.maxErrorRate, 1);
  checkShare('experiment.guardrails.max_degraded_rate', g.maxDegradedRate, 1);
  checkShare('experiment.guardrails.max_p95_latency_ms', g.maxP95LatencyMs, 600_000);
  if (!Number.isInteger(g.minRequests) || g.minRequests < 0)
    fail('experiment.guardrails.min_requests', 'must be a non-negative integer');
  e.guardrails = {
    maxErrorRate: g.maxErrorRate || DEFAULT_GUARDRAILS.maxErrorRate,
    maxDegradedRate: g.maxDegradedRate || DEFAULT_GUARDRAILS.maxDegradedRate,
    maxP95LatencyMs: g.maxP95LatencyMs,
    minRequests: g.minRequests || DEFAULT_GUARDRAILS.minRequests,
  };
  const w = e.attributionWindowSeconds;
  if (!Number.isInteger(w) || w < 0 || w > 30 * DAY_SECONDS)
    fail('experiment.attribution_window_seconds', `must be between 1 and ${30 * DAY_SECONDS} (0 = one day)`);
  e.attributionWindowSeconds = w || DAY_SECONDS;

  e.state = State.STATE_UNSPECIFIED;
  e.stopReason = '';
  e.createTime = new Date(now);
  e.stopTime = undefined;
  e.state = experimentState(e, now);
  return e;
}

/** Scheduled before its start, stopped once stopped or past its end, running in between. */
export function experimentState(e: Experiment, now: number): experimentV1.State {
  if (e.stopTime || (e.endTime && now >= e.endTime.getTime())) return State.STATE_STOPPED;
  if (e.startTime && now < e.startTime.getTime()) return State.STATE_SCHEDULED;
  return State.STATE_RUNNING;
}

/** When the experiment stopped taking traffic (stop time or planned end), if it did. */
export function experimentEnd(e: Experiment): number | undefined {
  const stop = e.stopTime?.getTime();
  const end = e.endTime?.getTime();
  if (stop === undefined) return end;
  return end === undefined ? stop : Math.min(stop, end);
}

export function isRunning(e: Experiment, now: number): boolean {
  return experimentState(e, now) === State.STATE_RUNNING;
}

/** Running, or scheduled to: ranking loads what its arms pin ahead of its requests. */
export function takesTraffic(e: Experiment, now: number): boolean {
  return experimentState(e, now) !== State.STATE_STOPPED;
}

/** The stop reason Promote records; a promoted experiment's pins are production's now (or gone). */
export const promotedReason = (arm: string) => `promoted arm '${arm}'`;

export function wasPromoted(e: Experiment): boolean {
  return e.stopTime !== undefined && e.stopReason.startsWith('promoted arm ');
}

/** A model version that an arm of an experiment pins. */
export interface Pin {
  tenant: string;
  model: string;
  version: string;
}

/** Every version the arms of `experiments` pin, each once (definitions as stored: nothing is validated here). */
export function pinsOf(experiments: Iterable<Experiment>): Pin[] {
  const out = new Map<string, Pin>();
  for (const e of experiments)
    for (const arm of e.arms)
      for (const [model, version] of Object.entries(arm.models))
        if (version) out.set(`${e.tenant}\u001f${model}\u001f${version}`, { tenant: e.tenant, model, version });
  return [...out.values()];
}

export function isInterleaving(e: Experiment): boolean {
  return e.design === Design.DESIGN_INTERLEAVING;
}

export function assignmentPlan(e: Experiment): AssignmentPlan {
  return {
    tenant: e.tenant,
    salt: e.salt,
    holdout: e.holdout,
    arms: e.arms.map((a) => ({ name: a.name, share: a.trafficShare })),
  };
}

/**
 * Re-validates a stored definition (a reader must not trust the bucket blindly), keeping its output-only
 * fields; throws InvalidArgumentError when it is not a valid one.
 */
export function revalidateExperiment(raw: Experiment, now: number): Experiment {
  const checked = normalizeExperiment(raw, now);
  const stored = {
    ...checked,
    createTime: raw.createTime ?? checked.createTime,
    stopTime: raw.stopTime,
    stopReason: raw.stopReason,
  };
  return { ...stored, state: experimentState(stored, now) };
}
