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
    // The text encoder serves Search and SimilarItems: pinning it on Recommend would change nothing.
    [
      'experiment.arms[1].models.text_encoder',
      { arms: arms([{ name: 'a' }, { name: 'b', models: { text_encoder: 't2' } }]) },
    ],
    ['experiment.arms[1].models', { arms: arms([{ name: 'a' }, { name: 'b', models: { gpt: 'v2' } }]) }],
    ['experiment.arms[1].models.churn', { arms: arms([{ name: 'a' }, { name: 'b', models: { churn: 'c/2' } }]) }],
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

  it('pin any kind ranking serves, in-process or through another service; refuse unknown kinds and pins that change nothing', () => {
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
    const remote = normalizeExperiment(
      valid({ arms: arms([{ name: 'a' }, { name: 'b', models: { sasrec: 'v2', churn: 'c1' } }]) }),
      NOW,
    );
    expect(remote.arms[1]?.models).toEqual({ sasrec: 'v2', churn: 'c1' });
    const similar = normalizeExperiment(
      valid({
        surface: rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
        arms: arms([{ name: 'a', models: { text_encoder: 't1' } }, { name: 'b' }]),
      }),
      NOW,
    );
    expect(similar.arms[0]?.models).toEqual({ text_encoder: 't1' });
    const bad = (models: Record<string, string>, surface = rankingV1.Surface.SURFACE_RECOMMEND) => {
      try {
        normalizeExperiment(valid({ surface, arms: arms([{ name: 'a' }, { name: 'b', models }]) }), NOW);
      } catch (err) {
        return err instanceof InvalidArgumentError ? err.message : String(err);
      }
      return 'accepted';
    };
    expect(bad({ text_encoder: 't1' })).toMatch(
      /experiment\.arms\[1\]\.models\.text_encoder.*changes nothing on SURFACE_RECOMMEND/,
    );
    expect(bad({ sasrec: 'v2' }, rankingV1.Surface.SURFACE_SEARCH)).toMatch(/models\.sasrec.*changes nothing/);
    expect(bad({ word2vec: 'v1' })).toMatch(/experiment\.arms\[1\]\.models.*unknown model 'word2vec'/);
    expect(bad({ sasrec: 'v 2' })).toMatch(/models\.sasrec.*a version of 1\.\.128 characters/);
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
