import { experimentV1, rankingV1 } from '@aisle/contracts';
import type {
  ArmResultView,
  EstimateView,
  ExperimentActionResult,
  ExperimentResultView,
  ExperimentSummaryView,
  ExperimentsView,
  ExperimentView,
  InterleavingView,
  PreferenceView,
} from './api';

/** The experiment service's calls the Experiments page needs; `services.grpc.ts` implements them. */
export interface ExperimentPort {
  list(tenant: string): Promise<experimentV1.Experiment[]>;
  get(tenant: string, id: string): Promise<experimentV1.Experiment | undefined>;
  results(tenant: string, id: string): Promise<experimentV1.ExperimentResult | undefined>;
  stop(tenant: string, id: string, reason: string): Promise<experimentV1.Experiment | undefined>;
  promote(tenant: string, id: string, arm: string, force: boolean): Promise<experimentV1.PromoteResponse>;
}

const ms = (d: Date | undefined) => (d ? d.getTime() : null);
/** `STATE_RUNNING` -> `running`: the enum's JSON name without its prefix, lower case. */
const enumName = (json: string, prefix: string) => json.replace(prefix, '').toLowerCase();

const estimate = (e: experimentV1.Estimate | undefined): EstimateView | null =>
  e ? { value: e.value, lower: e.lower, upper: e.upper } : null;

const state = (s: experimentV1.State) =>
  enumName(experimentV1.stateToJSON(s), 'STATE_') as ExperimentSummaryView['state'];
const metric = (m: experimentV1.Metric) => enumName(experimentV1.metricToJSON(m), 'METRIC_');

export function experimentSummary(e: experimentV1.Experiment): ExperimentSummaryView {
  return {
    id: e.id,
    description: e.description,
    surface: enumName(rankingV1.surfaceToJSON(e.surface), 'SURFACE_'),
    design: enumName(experimentV1.designToJSON(e.design), 'DESIGN_') as ExperimentSummaryView['design'],
    state: state(e.state),
    primaryMetric: metric(e.primaryMetric),
    control: e.control || (e.arms[0]?.name ?? ''),
    holdout: e.holdout,
    arms: e.arms.map((a) => ({
      name: a.name,
      trafficShare: a.trafficShare,
      models: { ...a.models },
      rankerDisabled: a.rankerDisabled,
      retentionBoost: a.rules?.retentionBoost ?? 0,
      maxPerCategory: a.rules?.maxPerCategory ?? 0,
    })),
    createTime: ms(e.createTime),
    startTime: ms(e.startTime),
    endTime: ms(e.endTime),
    stopTime: ms(e.stopTime),
    stopReason: e.stopReason,
  };
}

function armResult(a: experimentV1.ArmResult): ArmResultView {
  return {
    arm: a.arm,
    units: a.units,
    requests: a.requests,
    impressions: a.impressions,
    clicks: a.clicks,
    addToCarts: a.addToCarts,
    purchases: a.purchases,
    revenue: a.revenue,
    ctr: estimate(a.ctr),
    addToCartRate: estimate(a.addToCartRate),
    conversionRate: estimate(a.conversionRate),
    revenuePerMille: estimate(a.revenuePerMille),
    errorRate: estimate(a.errorRate),
    degradedRate: estimate(a.degradedRate),
    latencyP95Ms: a.latencyP95Ms,
    expectedShare: a.expectedShare,
  };
}

const preference = (p: experimentV1.Preference | undefined): PreferenceView | null =>
  p
    ? {
        winsA: p.winsA,
        winsB: p.winsB,
        ties: p.ties,
        preference: estimate(p.preference),
        pValue: p.pValue,
        winner: p.winner,
      }
    : null;

const interleaving = (i: experimentV1.InterleavingResult | undefined): InterleavingView | null =>
  i
    ? {
        armA: i.armA,
        armB: i.armB,
        requests: i.requests,
        clicks: preference(i.clicks),
        purchases: preference(i.purchases),
      }
    : null;

/** GetResults' answer as the page shows it: the same figures, times in epoch milliseconds, enums by name. */
export function resultView(r: experimentV1.ExperimentResult): ExperimentResultView {
  const srm = r.sampleRatio;
  return {
    state: state(r.state),
    stopReason: r.stopReason,
    asOf: ms(r.asOf),
    primaryMetric: metric(r.primaryMetric),
    alpha: r.alpha,
    control: r.control,
    arms: r.arms.map(armResult),
    comparisons: r.comparisons.map((c) => ({
      metric: metric(c.metric),
      arm: c.arm,
      control: c.control,
      difference: estimate(c.difference),
      relativeLift: estimate(c.relativeLift),
      pValue: c.pValue,
    })),
    interleaving: interleaving(r.interleaving),
    sampleRatio: srm
      ? {
          mismatch: srm.mismatch,
          chiSquare: srm.chiSquare,
          degreesOfFreedom: srm.degreesOfFreedom,
          pValue: srm.pValue,
          counted: srm.counted,
          counts: srm.counts.map((c) => ({ arm: c.arm, observed: c.observed, expected: c.expected })),
        }
      : null,
    guardrails: r.guardrails.map((g) => ({
      arm: g.arm,
      check: g.check,
      value: g.value,
      limit: g.limit,
      tripped: g.tripped,
      reason: g.reason,
    })),
    winner: r.winner,
    timeline: r.timeline.map((p) => ({
      at: ms(p.time),
      arms: p.arms.map(armResult),
      interleaving: interleaving(p.interleaving),
    })),
    unattributedOutcomes: r.unattributedOutcomes,
  };
}

/** Missing from the experiment service (another tenant's id reads the same: its existence is not disclosed). */
export class ExperimentNotFoundError extends Error {
  override readonly name = 'ExperimentNotFoundError';
}

export async function experimentsView(port: ExperimentPort, tenant: string): Promise<ExperimentsView> {
  return { tenant, experiments: (await port.list(tenant)).map(experimentSummary) };
}

/** One experiment: its definition and GetResults' answer. */
export async function experimentView(port: ExperimentPort, tenant: string, id: string): Promise<ExperimentView> {
  const [experiment, result] = await Promise.all([port.get(tenant, id), port.results(tenant, id)]);
  if (!experiment || !result) throw new ExperimentNotFoundError(`no experiment ${id}`);
  return { tenant, experiment: experimentSummary(experiment), result: resultView(result) };
}

export async function stopExperiment(
  port: ExperimentPort,
  tenant: string,
  id: string,
  reason: string,
): Promise<ExperimentActionResult> {
  const e = await port.stop(tenant, id, reason);
  if (!e) throw new ExperimentNotFoundError(`no experiment ${id}`);
  return { experiment: experimentSummary(e), activated: {} };
}

export async function promoteArm(
  port: ExperimentPort,
  tenant: string,
  id: string,
  arm: string,
  force: boolean,
): Promise<ExperimentActionResult> {
  const r = await port.promote(tenant, id, arm, force);
  if (!r.experiment) throw new ExperimentNotFoundError(`no experiment ${id}`);
  return { experiment: experimentSummary(r.experiment), activated: { ...r.activated } };
}
