import { experimentV1, InvalidArgumentError, rankingV1 } from '@aisle/contracts';
import {
  DEFAULT_GUARDRAILS,
  experimentState,
  normalizeExperiment,
  revalidateExperiment,
  type Experiment,
} from './definition';
import { experimentFor, interleave, route } from './router';

const NOW = Date.UTC(2026, 10, 30, 12);
const { Design, Metric, State } = experimentV1;

const valid = (extra: Partial<Experiment> = {}): Experiment =>
  experimentV1.Experiment.fromPartial({
    id: 'ranker-v2',
    surface: rankingV1.Surface.SURFACE_RECOMMEND,
    design: Design.DESIGN_AB,
    arms: [{ name: 'control' }, { name: 'treatment', models: { ranker: 'r-2026-11-30' } }],
    ...extra,
  });

const arms = (xs: Array<Partial<experimentV1.Arm>>): experimentV1.Arm[] =>
  xs.map((a) => experimentV1.Arm.fromPartial(a));

function fieldOf(e: Experiment): string {
  try {
    normalizeExperiment(e, NOW);
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err.field;
    throw err;
  }
  return '(accepted)';
}

describe('experiment definitions', () => {
  it('fill in every default', () => {
    const e = normalizeExperiment(valid(), NOW);
    expect(e.tenant).toBe('default');
    expect(e.salt).toBe('ranker-v2');
    expect(e.control).toBe('control');
    expect(e.arms.map((a) => a.trafficShare)).toEqual([0.5, 0.5]);
    expect(e.primaryMetric).toBe(Metric.METRIC_CTR);
    expect(e.startTime?.getTime()).toBe(NOW);
    expect(e.guardrails).toEqual(DEFAULT_GUARDRAILS);
    expect(e.attributionWindowSeconds).toBe(86_400);
    expect(e.state).toBe(State.STATE_RUNNING);
    const i = normalizeExperiment(valid({ design: Design.DESIGN_INTERLEAVING }), NOW);
    expect(i.primaryMetric).toBe(Metric.METRIC_INTERLEAVING_PREFERENCE);
  });

  it.each<[string, Partial<Experiment>]>([
    ['experiment.id', { id: '' }],
    ['experiment.id', { id: 'Has Spaces' }],
    ['experiment.design', { design: Design.DESIGN_UNSPECIFIED }],
    ['experiment.surface', { surface: rankingV1.Surface.SURFACE_UNSPECIFIED }],
    ['experiment.surface', { design: Design.DESIGN_INTERLEAVING, surface: rankingV1.Surface.SURFACE_SIMILAR_ITEMS }],
    ['experiment.arms', { arms: arms([{ name: 'only' }]) }],
    ['experiment.arms[1].name', { arms: arms([{ name: 'a' }, { name: 'a' }]) }],
    [
      'experiment.arms',
      {
        arms: arms([
          { name: 'a', trafficShare: 0.5 },
          { name: 'b', trafficShare: 0.6 },
        ]),
      },
    ],
    ['experiment.arms[0].traffic_share', { arms: arms([{ name: 'a', trafficShare: -1 }, { name: 'b' }]) }],
    ['experiment.arms[1].models.sasrec', { arms: arms([{ name: 'a' }, { name: 'b', models: { sasrec: 'v2' } }]) }],
    ['experiment.arms[1].models', { arms: arms([{ name: 'a' }, { name: 'b', models: { gpt: 'v2' } }]) }],
    ['experiment.arms[1].models.churn', { arms: arms([{ name: 'a' }, { name: 'b', models: { churn: 'c2' } }]) }],
    // The search model orders Search only: pinning it on Recommend would change nothing.
    [
      'experiment.arms[1].models.search_ranker',
      { arms: arms([{ name: 'a' }, { name: 'b', models: { search_ranker: 'q2' } }]) },
    ],
    [
      'experiment.arms[1].rules.retention_boost',
      {
        arms: arms([
          { name: 'a' },
          { name: 'b', rules: { retentionBoost: Number.NaN, churnRiskThreshold: 0, maxPerCategory: 0 } },
        ]),
      },
    ],
    ['experiment.control', { control: 'nobody' }],
    ['experiment.holdout', { holdout: 1 }],
    ['experiment.primary_metric', { primaryMetric: Metric.METRIC_INTERLEAVING_PREFERENCE }],
    ['experiment.primary_metric', { design: Design.DESIGN_INTERLEAVING, primaryMetric: Metric.METRIC_CTR }],
    ['experiment.end_time', { startTime: new Date(NOW), endTime: new Date(NOW - 1) }],
    [
      'experiment.guardrails.max_error_rate',
      { guardrails: { maxErrorRate: 2, maxDegradedRate: 0, maxP95LatencyMs: 0, minRequests: 0 } },
    ],
    ['experiment.attribution_window_seconds', { attributionWindowSeconds: -5 }],
  ])('name the bad field: %s', (field, patch) => {
    expect(fieldOf(valid(patch))).toBe(field);
  });

  it('pin any kind ranking serves in-process; say why a kind served elsewhere cannot be pinned', () => {
    const search = normalizeExperiment(
      valid({
        surface: rankingV1.Surface.SURFACE_SEARCH,
        arms: arms([{ name: 'a' }, { name: 'b', models: { ranker: 'r2', search_ranker: 'q2' } }]),
      }),
      NOW,
    );
    expect(search.arms[1]?.models).toEqual({ ranker: 'r2', search_ranker: 'q2' });
    const session = normalizeExperiment(
      valid({ arms: arms([{ name: 'a', models: { session: 's2' } }, { name: 'b' }]) }),
      NOW,
    );
    expect(session.arms[0]?.models).toEqual({ session: 's2' });
    expect(() =>
      normalizeExperiment(valid({ arms: arms([{ name: 'a' }, { name: 'b', models: { sasrec: 'v2' } }]) }), NOW),
    ).toThrow(/embedding-inference serves one active sasrec version to every caller/);
  });

  it('know when they run', () => {
    const e = normalizeExperiment(valid({ startTime: new Date(NOW + 1000), endTime: new Date(NOW + 2000) }), NOW);
    expect(experimentState(e, NOW)).toBe(State.STATE_SCHEDULED);
    expect(experimentState(e, NOW + 1500)).toBe(State.STATE_RUNNING);
    expect(experimentState(e, NOW + 2000)).toBe(State.STATE_STOPPED);
    expect(experimentState({ ...e, stopTime: new Date(NOW + 1200) }, NOW + 1500)).toBe(State.STATE_STOPPED);
  });

  it('survive the proto3 JSON of the KV bucket with their output-only fields', () => {
    const e = { ...normalizeExperiment(valid(), NOW), stopTime: new Date(NOW + 5), stopReason: 'by hand' };
    const json = JSON.parse(JSON.stringify(experimentV1.Experiment.toJSON(e))) as unknown;
    const back = revalidateExperiment(experimentV1.Experiment.fromJSON(json), NOW + 10);
    expect(back).toEqual({ ...e, state: State.STATE_STOPPED });
  });
});

describe('routing', () => {
  const ab = normalizeExperiment(valid({ holdout: 0.2 }), NOW);
  const inter = normalizeExperiment(
    valid({ id: 'il', design: Design.DESIGN_INTERLEAVING, surface: rankingV1.Surface.SURFACE_SEARCH }),
    NOW,
  );

  it('finds the running experiment of a surface', () => {
    expect(experimentFor([ab, inter], 'default', rankingV1.Surface.SURFACE_SEARCH, NOW)?.id).toBe('il');
    expect(experimentFor([ab], 'other', rankingV1.Surface.SURFACE_RECOMMEND, NOW)).toBeUndefined();
    const stopped = { ...ab, stopTime: new Date(NOW) };
    expect(experimentFor([stopped], 'default', rankingV1.Surface.SURFACE_RECOMMEND, NOW)).toBeUndefined();
  });

  it('routes units to an arm, the holdout to nothing, and interleaves reproducibly', () => {
    const kinds = new Map<string, number>();
    for (let u = 0; u < 2000; u++) {
      const r = route(ab, `u:${u}`);
      const k = r.kind === 'ab' ? r.arm : r.kind;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    expect(kinds.get('none')).toBeGreaterThan(300);
    expect(kinds.get('none')).toBeLessThan(500);
    expect(route(inter, 'u:1')).toEqual({ kind: 'interleave', experiment: inter, a: 'control', b: 'treatment' });
    const a = { name: 'control', items: [{ itemId: 'x' }, { itemId: 'y' }] };
    const b = { name: 'treatment', items: [{ itemId: 'y' }, { itemId: 'z' }] };
    expect(interleave(inter, 'req-1', a, b, 4)).toEqual(interleave(inter, 'req-1', a, b, 4));
  });
});
