/**
 * `pnpm bench experiments`: how sensitive the experiments are, on simulated shoppers of a generated shop
 * who click by their planted tastes.
 *
 * 1. Sensitivity: the 'better' ranker (less noise around the tastes) against the 'worse' one, by team-draft
 *    interleaving and by A/B on CTR, for a large and a medium difference. Each run simulates one stream of
 *    requests; the analysis is read, as a fixed-horizon test, at growing prefixes of it. Reported: the
 *    impressions at which half and 80 % of runs reach p < 0.05 in the right direction (interpolated on a
 *    log scale between the checkpoints), and A/B's figure over interleaving's (the ceiling is interleaving
 *    itself, measured in the same run on the same traffic).
 * 2. A/A: both arms the same ranker, many runs at a fixed size. The share of runs with p < 0.05 is the
 *    false-positive rate (it should be about 5 %: the ceiling is alpha itself), with its 95 % interval;
 *    likewise sample-ratio false alarms (p < 0.001).
 *
 * Usage: pnpm bench experiments [--runs 20] [--aa-runs 200] [--aa-requests 1000] [--users 20000] [--seed 1]
 */
import { experimentV1, rankingV1 } from '@aisle/contracts';
import { generateShop, Rng, shoppers } from '@aisle/datagen';
import {
  analyzeExperiment,
  ALPHA,
  normalizeExperiment,
  simulateExperiment,
  wilson,
  type Experiment,
  type JoinedRequest,
} from '@aisle/experiments';
import { parseArgs } from 'node:util';
import { report, type Row } from './report';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'aa-runs': { type: 'string', default: '200' },
    'aa-requests': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    users: { type: 'string', default: '20000' },
  },
});
const RUNS = Number(values.runs);
const AA_RUNS = Number(values['aa-runs']);
const AA_REQUESTS = Number(values['aa-requests']);
const SEED = Number(values.seed);
const LIMIT = 10;
/** Ranker noise per arm for each planted difference (less noise = closer to the tastes = better). */
const EFFECTS = [
  { name: 'large', better: 0.1, worse: 0.14, il: [50, 3200], ab: [250, 16_000] },
  { name: 'medium', better: 0.11, worse: 0.13, il: [100, 6400], ab: [500, 32_000] },
] as const;
const SAME = 0.12;

// With many users most requests come from different people; with few, the same (heavy) users return and
// A/B is limited by the split of users however many requests it sees, while interleaving compares both
// arms inside each request. `--users` sets the population.
const shop = generateShop({ seed: 7, items: 300, users: Number(values.users), days: 1 });
const people = shoppers(shop);
const { Design, Metric } = experimentV1;

/** A fresh salt per run: runs must not share the split of users (A/B) or the coins (interleaving). */
function experiment(design: experimentV1.Design, arms: [string, string], run: number): Experiment {
  return normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      id: 'bench',
      salt: `bench-${SEED}-${run}`,
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design,
      arms: [{ name: arms[0] }, { name: arms[1] }],
    }),
    0,
  );
}

function simulate(e: Experiment, requests: number, seed: number, noise: Record<string, number>): JoinedRequest[] {
  return simulateExperiment({
    experiment: e,
    requests,
    limit: LIMIT,
    start: Date.UTC(2026, 10, 1),
    intervalMs: 1000,
    ...people.traffic(new Rng(seed), (arm) => noise[arm] ?? Number.NaN),
  });
}

/** p-value of the design's test, signed: negative when the result points the wrong way. */
function signedP(e: Experiment, data: JoinedRequest[]): { p: number; rightWay: boolean; srmP: number } {
  const r = analyzeExperiment(e, data, 0);
  const srmP = r.sampleRatio?.pValue ?? 1;
  if (e.design === Design.DESIGN_INTERLEAVING) {
    const c = r.interleaving?.clicks;
    return { p: c?.pValue ?? 1, rightWay: (c?.winsB ?? 0) > (c?.winsA ?? 0), srmP };
  }
  const ctr = r.comparisons.find((c) => c.metric === Metric.METRIC_CTR);
  return { p: ctr?.pValue ?? 1, rightWay: (ctr?.difference?.value ?? 0) > 0, srmP };
}

const grid = (from: number, to: number): number[] => {
  const out: number[] = [];
  for (let n = from; n <= to; n = Math.round(n * Math.SQRT2)) out.push(n);
  return out;
};

interface Sensitivity {
  design: string;
  effect: string;
  checkpoints: number[];
  power: number[];
}

function sensitivity(
  design: experimentV1.Design,
  effect: (typeof EFFECTS)[number],
  range: readonly [number, number],
): Sensitivity {
  const checkpoints = grid(range[0], range[1]);
  const max = checkpoints[checkpoints.length - 1] as number;
  const hits = checkpoints.map(() => 0);
  for (let run = 0; run < RUNS; run++) {
    const e = experiment(design, ['worse', 'better'], run);
    const data = simulate(e, max, SEED * 1000 + run, { better: effect.better, worse: effect.worse });
    checkpoints.forEach((n, i) => {
      const { p, rightWay } = signedP(e, data.slice(0, n));
      if (p < ALPHA && rightWay) hits[i] = (hits[i] ?? 0) + 1;
    });
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  return {
    design: design === Design.DESIGN_INTERLEAVING ? 'interleaving' : 'A/B (CTR)',
    effect: effect.name,
    checkpoints,
    power: hits.map((h) => h / RUNS),
  };
}

/** Impressions at which the power curve first reaches `target`, interpolated on a log scale; NaN if never. */
function impressionsAt(s: Sensitivity, target: number): number {
  const i = s.power.findIndex((p) => p >= target);
  if (i < 0) return Number.NaN;
  const n1 = s.checkpoints[i] as number;
  if (i === 0) return n1 * LIMIT;
  const n0 = s.checkpoints[i - 1] as number;
  const p0 = s.power[i - 1] as number;
  const p1 = s.power[i] as number;
  const t = p1 > p0 ? (target - p0) / (p1 - p0) : 1;
  return Math.round(Math.exp(Math.log(n0) + t * (Math.log(n1) - Math.log(n0))) * LIMIT);
}

function aa(design: experimentV1.Design): Row {
  let positives = 0;
  let srmAlarms = 0;
  for (let run = 0; run < AA_RUNS; run++) {
    const e = experiment(design, ['a', 'b'], run);
    const data = simulate(e, AA_REQUESTS, SEED * 100_000 + run, { a: SAME, b: SAME });
    const { p, srmP } = signedP(e, data);
    if (p < ALPHA) positives++;
    if (srmP < 0.001) srmAlarms++;
    if (run % 10 === 0) process.stderr.write('.');
  }
  process.stderr.write('\n');
  const w = wilson(positives, AA_RUNS);
  return {
    design: design === Design.DESIGN_INTERLEAVING ? 'interleaving (A/A)' : 'A/B CTR (A/A)',
    runs: AA_RUNS,
    requests_per_run: AA_REQUESTS,
    false_positive_rate: w.value,
    fpr_ci_low: w.lower,
    fpr_ci_high: w.upper,
    alpha: ALPHA,
    fpr_over_alpha: w.value / ALPHA,
    srm_false_alarms: srmAlarms,
  };
}

const started = Date.now();
const curves: Sensitivity[] = [];
const sensitivityRows: Row[] = [];
for (const effect of EFFECTS) {
  const il = sensitivity(Design.DESIGN_INTERLEAVING, effect, effect.il);
  const ab = sensitivity(Design.DESIGN_AB, effect, effect.ab);
  curves.push(il, ab);
  // Not reached within the simulated traffic: said so, with the bound.
  const cell = (x: number, s: Sensitivity) =>
    Number.isNaN(x) ? `> ${(s.checkpoints[s.checkpoints.length - 1] ?? 0) * LIMIT}` : x;
  for (const s of [il, ab])
    sensitivityRows.push({
      effect: effect.name,
      design: s.design,
      runs: RUNS,
      impressions_half_significant: cell(impressionsAt(s, 0.5), s),
      impressions_80pct_significant: cell(impressionsAt(s, 0.8), s),
    });
  const bound = (ab.checkpoints[ab.checkpoints.length - 1] ?? 0) * LIMIT;
  const times = (target: number) => {
    const a = impressionsAt(ab, target);
    const i = impressionsAt(il, target);
    return Number.isNaN(a) ? `> ${(bound / i).toFixed(1)}` : a / i;
  };
  sensitivityRows.push({
    effect: effect.name,
    design: 'A/B over interleaving',
    runs: RUNS,
    impressions_half_significant: times(0.5),
    impressions_80pct_significant: times(0.8),
  });
}
const aaRows = [aa(Design.DESIGN_INTERLEAVING), aa(Design.DESIGN_AB)];

report(`experiments-sensitivity-${shop.users.length}-users`, sensitivityRows, {
  setup: { items: shop.items.length, users: shop.users.length, limit: LIMIT, effects: EFFECTS, seed: SEED },
  curves,
});
report(`experiments-aa-${shop.users.length}-users`, aaRows, { seconds: (Date.now() - started) / 1000 });
