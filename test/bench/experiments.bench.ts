/**
 * `pnpm bench experiments`: how sensitive the experiments are, on simulated shoppers of a generated shop
 * who click by their planted tastes, in two kinds of traffic: `visitors` (a large population, most
 * requests from someone new: about one request per user) and `returning` (a small population of regulars
 * who come back many times: the traffic of a shop with loyal customers, where per-user clustering bites).
 * Each arm serves a model whose errors are its own and the same for a user every time (`--errors request`
 * redraws them per request, as the first version of this benchmark did).
 *
 * 1. Sensitivity: the 'better' ranker (less noise around the tastes) against the 'worse' one, by team-draft
 *    interleaving and by A/B on CTR, for a large and a medium difference. Each run simulates one stream of
 *    requests; the analysis is read, as a fixed-horizon test, at growing prefixes of it. Reported: the
 *    impressions at which half and 80 % of runs reach p < 0.05 in the right direction (interpolated on a
 *    log scale between the checkpoints), the requests per user by then, the CTR lift the difference makes,
 *    and A/B's figure over interleaving's (the ceiling is interleaving itself, measured in the same run on
 *    the same traffic).
 * 2. A/A: both arms the same model, many runs at a fixed size. The share of runs with p < 0.05 is the
 *    false-positive rate (it should be about 5 %: the ceiling is alpha itself), with its 95 % interval;
 *    likewise sample-ratio false alarms (p < 0.001).
 *
 * Usage: pnpm bench experiments [--runs 20] [--aa-runs 200] [--aa-requests 1000] [--visitors 20000]
 *        [--returning 250] [--errors model|request] [--seed 1]
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
    visitors: { type: 'string', default: '20000' },
    returning: { type: 'string', default: '250' },
    errors: { type: 'string', default: 'model' },
  },
});
const RUNS = Number(values.runs);
const AA_RUNS = Number(values['aa-runs']);
const AA_REQUESTS = Number(values['aa-requests']);
const SEED = Number(values.seed);
const ERRORS = values.errors === 'request' ? 'request' : 'model';
const LIMIT = 10;
/** Ranker noise per arm for each planted difference (less noise = closer to the tastes = better). */
const EFFECTS = [
  { name: 'large', better: 0.1, worse: 0.14, il: [50, 3200], ab: [250, 16_000] },
  { name: 'medium', better: 0.11, worse: 0.13, il: [100, 6400], ab: [500, 32_000] },
] as const;
/** Returning users: A/B is bounded by the split of the few users, so its traffic goes further. */
const RETURNING_AB_REACH = 2;
const SAME = 0.12;
const { Design, Metric } = experimentV1;

/** A population: its shop (the same items and tastes generator, `users` of them) and its shoppers. */
interface Scenario {
  name: string;
  people: ReturnType<typeof shoppers>;
  users: number;
}
const scenario = (name: string, users: number): Scenario => ({
  name,
  users,
  people: shoppers(generateShop({ seed: 7, items: 300, users, days: 1 })),
});
const SCENARIOS = [scenario('visitors', Number(values.visitors)), scenario('returning', Number(values.returning))];

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

/**
 * One run's traffic: each arm serves the model named by `modelOf` (its errors drawn per run, so runs are
 * independent draws of models as well as of shoppers).
 */
function simulate(
  s: Scenario,
  e: Experiment,
  requests: number,
  seed: number,
  noise: Record<string, number>,
  modelOf: (arm: string) => string,
): JoinedRequest[] {
  return simulateExperiment({
    experiment: e,
    requests,
    limit: LIMIT,
    start: Date.UTC(2026, 10, 1),
    intervalMs: 1000,
    ...s.people.traffic(new Rng(seed), (arm) => noise[arm] ?? Number.NaN, {
      errors: ERRORS,
      modelOf: (arm) => `${modelOf(arm)}#${seed}`,
    }),
  });
}

/** p-value of the design's test, signed: negative when the result points the wrong way. */
function signedP(
  e: Experiment,
  data: JoinedRequest[],
): { p: number; rightWay: boolean; srmP: number; lift: number; decided: number } {
  const r = analyzeExperiment(e, data, 0);
  const srmP = r.sampleRatio?.pValue ?? 1;
  if (e.design === Design.DESIGN_INTERLEAVING) {
    const c = r.interleaving?.clicks;
    // The share of requests the sign test uses: those one team won.
    const decided = ((c?.winsA ?? 0) + (c?.winsB ?? 0)) / Math.max(1, r.interleaving?.requests ?? 0);
    return { p: c?.pValue ?? 1, rightWay: (c?.winsB ?? 0) > (c?.winsA ?? 0), srmP, lift: Number.NaN, decided };
  }
  const ctr = r.comparisons.find((c) => c.metric === Metric.METRIC_CTR);
  return {
    p: ctr?.pValue ?? 1,
    rightWay: (ctr?.difference?.value ?? 0) > 0,
    srmP,
    lift: ctr?.relativeLift?.value ?? Number.NaN,
    decided: Number.NaN,
  };
}

const grid = (from: number, to: number): number[] => {
  const out: number[] = [];
  for (let n = from; n <= to; n = Math.round(n * Math.SQRT2)) out.push(n);
  return out;
};

interface Sensitivity {
  scenario: string;
  design: string;
  effect: string;
  checkpoints: number[];
  power: number[];
  /** Mean requests per unit (user) seen by each checkpoint. */
  requestsPerUser: number[];
  /** A/B: the CTR lift of better over worse on the largest prefix, mean over runs. */
  lift: number;
  /** Interleaving: the share of requests won by one team (the sign test's data), largest prefix, mean over runs. */
  decided: number;
}

function sensitivity(
  s: Scenario,
  design: experimentV1.Design,
  effect: (typeof EFFECTS)[number],
  range: readonly [number, number],
): Sensitivity {
  const checkpoints = grid(range[0], range[1]);
  const max = checkpoints[checkpoints.length - 1] as number;
  const hits = checkpoints.map(() => 0);
  const perUser = checkpoints.map(() => 0);
  let lift = 0;
  let decided = 0;
  for (let run = 0; run < RUNS; run++) {
    const e = experiment(design, ['worse', 'better'], run);
    const data = simulate(s, e, max, SEED * 1000 + run, { better: effect.better, worse: effect.worse }, (a) => a);
    const units = new Set<string>();
    let at = 0;
    checkpoints.forEach((n, i) => {
      for (; at < n && at < data.length; at++) units.add((data[at] as JoinedRequest).served.unit);
      perUser[i] = (perUser[i] ?? 0) + n / Math.max(1, units.size) / RUNS;
      const r = signedP(e, data.slice(0, n));
      if (r.p < ALPHA && r.rightWay) hits[i] = (hits[i] ?? 0) + 1;
      if (i === checkpoints.length - 1) {
        lift += r.lift / RUNS;
        decided += r.decided / RUNS;
      }
    });
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  return {
    scenario: s.name,
    design: design === Design.DESIGN_INTERLEAVING ? 'interleaving' : 'A/B (CTR)',
    effect: effect.name,
    checkpoints,
    power: hits.map((h) => h / RUNS),
    requestsPerUser: perUser,
    lift,
    decided,
  };
}

/** Where the power curve first reaches `target`, interpolated on a log scale: checkpoint index and fraction. */
function reach(s: Sensitivity, target: number): { i: number; t: number } | undefined {
  const i = s.power.findIndex((p) => p >= target);
  if (i < 0) return undefined;
  if (i === 0) return { i, t: 0 };
  const p0 = s.power[i - 1] as number;
  const p1 = s.power[i] as number;
  return { i, t: p1 > p0 ? (target - p0) / (p1 - p0) : 1 };
}

const logBetween = (a: number, b: number, t: number) => Math.exp(Math.log(a) + t * (Math.log(b) - Math.log(a)));

/** Impressions at which the power curve first reaches `target`; NaN if never. */
function impressionsAt(s: Sensitivity, target: number): number {
  const r = reach(s, target);
  if (!r) return Number.NaN;
  const n1 = s.checkpoints[r.i] as number;
  if (r.i === 0) return n1 * LIMIT;
  return Math.round(logBetween(s.checkpoints[r.i - 1] as number, n1, r.t) * LIMIT);
}

/** Requests per user by the time the power curve reaches `target`; NaN if never. */
function perUserAt(s: Sensitivity, target: number): number {
  const r = reach(s, target);
  if (!r) return Number.NaN;
  const u1 = s.requestsPerUser[r.i] as number;
  if (r.i === 0) return u1;
  return Math.round(logBetween(s.requestsPerUser[r.i - 1] as number, u1, r.t) * 10) / 10;
}

function aa(s: Scenario, design: experimentV1.Design): Row {
  let positives = 0;
  let srmAlarms = 0;
  for (let run = 0; run < AA_RUNS; run++) {
    const e = experiment(design, ['a', 'b'], run);
    // Both arms serve one model: the null hypothesis exactly.
    const data = simulate(s, e, AA_REQUESTS, SEED * 100_000 + run, { a: SAME, b: SAME }, () => 'same');
    const { p, srmP } = signedP(e, data);
    if (p < ALPHA) positives++;
    if (srmP < 0.001) srmAlarms++;
    if (run % 10 === 0) process.stderr.write('.');
  }
  process.stderr.write('\n');
  const w = wilson(positives, AA_RUNS);
  return {
    scenario: s.name,
    users: s.users,
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
const aaRows: Row[] = [];
for (const s of SCENARIOS) {
  for (const effect of EFFECTS) {
    const il = sensitivity(s, Design.DESIGN_INTERLEAVING, effect, effect.il);
    const reachAb = s.name === 'returning' ? RETURNING_AB_REACH : 1;
    const ab = sensitivity(s, Design.DESIGN_AB, effect, [effect.ab[0], effect.ab[1] * reachAb]);
    curves.push(il, ab);
    // Not reached within the simulated traffic: said so, with the bound.
    const cell = (x: number, c: Sensitivity) =>
      Number.isNaN(x) ? `> ${(c.checkpoints[c.checkpoints.length - 1] ?? 0) * LIMIT}` : x;
    const perUser = (x: number) => (Number.isNaN(x) ? '-' : x);
    for (const c of [il, ab])
      sensitivityRows.push({
        scenario: s.name,
        users: s.users,
        effect: effect.name,
        ctr_lift: Math.round(ab.lift * 1000) / 1000,
        design: c.design,
        runs: RUNS,
        impressions_half_significant: cell(impressionsAt(c, 0.5), c),
        impressions_80pct_significant: cell(impressionsAt(c, 0.8), c),
        requests_per_user_at_80pct: perUser(perUserAt(c, 0.8)),
        decided_share: Number.isNaN(c.decided) ? '-' : Math.round(c.decided * 1000) / 1000,
      });
    const bound = (ab.checkpoints[ab.checkpoints.length - 1] ?? 0) * LIMIT;
    const times = (target: number) => {
      const a = impressionsAt(ab, target);
      const i = impressionsAt(il, target);
      return Number.isNaN(a) ? `> ${(bound / i).toFixed(1)}` : Math.round((a / i) * 100) / 100;
    };
    sensitivityRows.push({
      scenario: s.name,
      users: s.users,
      effect: effect.name,
      ctr_lift: Math.round(ab.lift * 1000) / 1000,
      design: 'A/B over interleaving',
      runs: RUNS,
      impressions_half_significant: times(0.5),
      impressions_80pct_significant: times(0.8),
      requests_per_user_at_80pct: '-',
      decided_share: '-',
    });
  }
  aaRows.push(aa(s, Design.DESIGN_INTERLEAVING), aa(s, Design.DESIGN_AB));
}

// Per-request errors are the old simulation, kept for comparison: reported under their own names.
const suffix = ERRORS === 'request' ? '-request-errors' : '';
report(`experiments-sensitivity${suffix}`, sensitivityRows, {
  setup: {
    items: 300,
    scenarios: SCENARIOS.map((s) => ({ name: s.name, users: s.users })),
    errors: ERRORS,
    limit: LIMIT,
    effects: EFFECTS,
    seed: SEED,
  },
  curves,
});
report(`experiments-aa${suffix}`, aaRows, { errors: ERRORS, seconds: (Date.now() - started) / 1000 });
