import { experimentV1, rankingV1 } from '@aisle/contracts';
import { generateShop, Rng, shoppers } from '@aisle/datagen';
import {
  analyzeExperiment,
  normalizeExperiment,
  simulateExperiment,
  trippedGuardrail,
  type Experiment,
  type JoinedRequest,
  type SimulationSpec,
} from '@aisle/experiments';

/**
 * Simulated shoppers of a generated shop click by their planted tastes; the 'better' arm ranks by those
 * tastes with less noise than the 'worse' arm. Interleaving and A/B must both find the better arm; a
 * broken assignment must trip the sample-ratio check; a failing arm must trip a guardrail; and the
 * result must not depend on the order (or repetition) in which the data arrived.
 */

const shop = generateShop({ seed: 7, items: 300, users: 2000, days: 1 });
const people = shoppers(shop);
const NOISE = { better: 0.1, worse: 0.14 } as Record<string, number>;
const REQUESTS = 5000;
const { Design, Metric } = experimentV1;

function experiment(design: experimentV1.Design, extra: Partial<Experiment> = {}): Experiment {
  return normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      id: 'planted',
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design,
      arms: [{ name: 'worse' }, { name: 'better' }],
      ...extra,
    }),
    0,
  );
}

function simulate(e: Experiment, seed: number, extra: Partial<SimulationSpec> = {}): JoinedRequest[] {
  return simulateExperiment({
    experiment: e,
    requests: REQUESTS,
    limit: 10,
    start: Date.UTC(2026, 10, 1),
    intervalMs: 1000,
    ...people.traffic(new Rng(seed), (arm) => NOISE[arm] ?? 0),
    ...extra,
  });
}

describe('a planted preference for one arm', () => {
  it('is found by interleaving at p < 0.01, and by A/B on the same traffic', () => {
    const inter = experiment(Design.DESIGN_INTERLEAVING);
    const ri = analyzeExperiment(inter, simulate(inter, 1), Date.UTC(2027, 0, 1));
    expect(ri.interleaving?.requests).toBe(REQUESTS);
    const clicks = ri.interleaving?.clicks;
    expect(clicks?.pValue).toBeLessThan(0.01);
    expect(clicks?.winsB).toBeGreaterThan(clicks?.winsA ?? Infinity);
    // Arm b ('better') is preferred: the preference of a ('worse') is below 0 with its whole interval.
    expect(clicks?.preference?.upper).toBeLessThan(0);
    expect(clicks?.winner).toBe('better');
    expect(ri.winner).toBe('better');

    const ab = experiment(Design.DESIGN_AB);
    const ra = analyzeExperiment(ab, simulate(ab, 1), Date.UTC(2027, 0, 1));
    const ctr = ra.comparisons.find((c) => c.metric === Metric.METRIC_CTR && c.arm === 'better');
    expect(ctr?.control).toBe('worse');
    expect(ctr?.pValue).toBeLessThan(0.05);
    expect(ctr?.difference?.lower).toBeGreaterThan(0);
    expect(ra.winner).toBe('better');
    // Both arms' figures come with intervals around their values.
    for (const arm of ra.arms) {
      expect(arm.impressions).toBeGreaterThan(0);
      expect(arm.ctr?.lower).toBeLessThan(arm.ctr?.value ?? 0);
      expect(arm.ctr?.upper).toBeGreaterThan(arm.ctr?.value ?? 0);
      expect(arm.revenuePerMille?.value).toBeCloseTo((1000 * arm.revenue) / arm.impressions, 6);
    }
    expect(ra.sampleRatio?.mismatch).toBe(false);
    expect(ra.timeline.length).toBeGreaterThan(2);
    expect(ra.timeline.length).toBeLessThanOrEqual(48);
  });
});

describe('the sample-ratio check', () => {
  it('fires when assignment is biased, and not when it is fair', () => {
    const e = experiment(Design.DESIGN_AB);
    const fair = analyzeExperiment(e, simulate(e, 2), 0).sampleRatio;
    expect(fair?.mismatch).toBe(false);
    // A broken assignment: 'better' units whose id ends in 0 or 8 (one in five) are logged under 'worse'.
    const biased = analyzeExperiment(
      e,
      simulate(e, 2, {
        assign: (unit, hashed) =>
          hashed === 'better' && unit.charCodeAt(unit.length - 1) % 8 === 0 ? 'worse' : hashed,
      }),
      0,
    ).sampleRatio;
    expect(biased?.mismatch).toBe(true);
    expect(biased?.pValue).toBeLessThan(0.001);
    expect(biased?.counts.find((c) => c.arm === 'worse')?.observed).toBeGreaterThan(
      biased?.counts.find((c) => c.arm === 'worse')?.expected ?? Infinity,
    );
  });
});

describe('guardrails', () => {
  it('trip for an arm that keeps failing, and name it', () => {
    const e = experiment(Design.DESIGN_AB);
    const rng = new Rng(99);
    const failing = simulate(e, 3, {
      run: (arm) => ({ latencyMs: 5, degraded: false, failed: arm === 'better' && rng.chance(0.3) }),
    });
    const r = analyzeExperiment(e, failing, 0);
    const reason = trippedGuardrail(r);
    expect(reason).toContain("arm 'better'");
    expect(reason).toContain('error rate');
    const healthy = analyzeExperiment(e, simulate(e, 3), 0);
    expect(trippedGuardrail(healthy)).toBeUndefined();
  });
});

describe('the analysis', () => {
  it('gives the same result whatever the order or repetition of its input', () => {
    const e = experiment(Design.DESIGN_INTERLEAVING);
    const data = simulate(e, 4).slice(0, 1500);
    const once = analyzeExperiment(e, data, 0);
    const rng = new Rng(5);
    const shuffled = rng
      .shuffle([...data])
      .map((r) => ({ ...r, outcomes: rng.shuffle([...r.outcomes, ...r.outcomes]) }));
    expect(analyzeExperiment(e, shuffled, 0)).toEqual(once);
  });
});
