import {
  buildSessionModel,
  evaluateSessions,
  mulberry32,
  numSessionItems,
  publishedSessionsFor,
  readSessionDir,
  Repeats,
  SequentialRules,
  SessionKnn,
  SessionRecommender,
  shuffleInPlace,
  tuneSessionModel,
  validationSplit,
  type SessionMetrics,
  type SessionModelSpec,
  type SessionTrial,
} from '@aisle/ml';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Progress, table } from './progress';

/** Documented limits (docs/ml.md): what a default run reads when a log is larger than its budget. */
export const SESSION_LIMITS = {
  /** Training sessions kept: the most recent ones (the log is in time order). */
  maxTrainSessions: 2_000_000,
  /** Validation: the latest share of the training sessions, as prefix cases ... */
  validationShare: 0.1,
  /** ... of which a seeded random sample of at most this many scores each setting. */
  validationCases: 20_000,
};

export interface SessionEvalOptions {
  dataset: string;
  seed: number;
  out: string;
  predictionsOut?: string | undefined;
  /** Seconds for the search over settings on validation (the best so far is kept when it runs out). */
  tuneBudgetSeconds: number;
}

export interface SessionEvalResult {
  dataset: string;
  protocol: 'sessions';
  seed: number;
  data: { items: number; trainSessions: number; testCases: number; trainSessionsUsed: number };
  validation: { split: string; sessions: number; cases: number; casesScored: number };
  selection: {
    criterion: string;
    split: 'validation';
    selected: SessionModelSpec;
    validation: SessionMetrics;
    trials: SessionTrial[];
  };
  /** Test, read once after selection: P@20 and MRR@20 in percent. */
  rows: Array<{ model: string } & SessionMetrics>;
  published: ReturnType<typeof publishedSessionsFor>;
  wallSeconds: number;
}

/**
 * `aisle eval --protocol sessions`: next-item prediction in anonymous sessions (every test prefix ranks
 * all items; P@20, MRR@20). Settings are chosen on the latest training sessions; the chosen model is
 * refit on all training sessions and the test cases are read once, at the end, with the baselines.
 */
export async function evaluateSessionLog(opts: SessionEvalOptions): Promise<SessionEvalResult> {
  const started = performance.now();
  const progress = new Progress();
  const d = readSessionDir(opts.dataset);
  const numItems = numSessionItems(d);
  const train =
    d.train.length > SESSION_LIMITS.maxTrainSessions ? d.train.slice(-SESSION_LIMITS.maxTrainSessions) : d.train;
  progress.log(
    `data set ${opts.dataset}: ${d.train.length} training sessions${train.length < d.train.length ? ` (the latest ${train.length} used)` : ''}, ${d.test.length} test cases, ${numItems} items`,
  );

  const split = validationSplit(train, SESSION_LIMITS.validationShare);
  const sample = shuffleInPlace([...split.cases], mulberry32(opts.seed)).slice(0, SESSION_LIMITS.validationCases);
  progress.log(
    `validation: the latest ${SESSION_LIMITS.validationShare * 100}% of training sessions (${split.sessions} sessions, ${split.cases.length} prefix cases; ${sample.length} sampled with seed ${opts.seed}); models fit on the ${split.fit.length} earlier sessions`,
  );
  const tuned = tuneSessionModel(split.fit, sample, numItems, {
    deadline: Date.now() + opts.tuneBudgetSeconds * 1000,
    log: (m) => progress.log(m),
  });
  const chosen = (tuned.trials.find((t) => t.spec === tuned.best) ?? tuned.trials[0]) as SessionTrial;
  progress.log(`selected on validation: ${JSON.stringify(tuned.best)}`);

  // Test, once: the selected model refit on every training session, and the baselines of the same run.
  const final = buildSessionModel(tuned.best, train, numItems);
  const popularity = final.popularity;
  const rows: SessionEvalResult['rows'] = [];
  const test = (model: string, rec: SessionRecommender, onTop?: (i: number, items: number[]) => void) => {
    const t0 = performance.now();
    rows.push({ model, ...evaluateSessions(rec, d.test, onTop ? { onTop } : {}) });
    progress.log(`test ${model}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  };
  test('Popularity (sanity check)', new SessionRecommender(popularity, popularity, numItems));
  test(
    `Sequential rules with repeats (steps ${tuned.best.rules.steps})`,
    new SessionRecommender(new SequentialRules(train, numItems, tuned.best.rules), popularity, numItems),
  );
  test(
    'Repeats only (the session itself)',
    new SessionRecommender(new Repeats(tuned.best.repeats), popularity, numItems),
  );
  test(
    'Session kNN alone (selected settings)',
    new SessionRecommender(new SessionKnn(train, numItems, tuned.best.knn), popularity, numItems),
  );
  let predictions: ReturnType<typeof createWriteStream> | undefined;
  if (opts.predictionsOut) {
    mkdirSync(dirname(opts.predictionsOut), { recursive: true });
    predictions = createWriteStream(opts.predictionsOut);
  }
  test('Session model (ours: selected on validation)', final.recommender, (i, items) =>
    predictions?.write(JSON.stringify({ i, items: items.map((x) => d.itemIds[x]) }) + '\n'),
  );
  if (predictions) await new Promise<void>((r) => predictions?.end(() => r()));

  const result: SessionEvalResult = {
    dataset: opts.dataset,
    protocol: 'sessions',
    seed: opts.seed,
    data: { items: numItems, trainSessions: d.train.length, testCases: d.test.length, trainSessionsUsed: train.length },
    validation: {
      split: `latest ${SESSION_LIMITS.validationShare * 100}% of training sessions, prefix cases, items unseen before dropped`,
      sessions: split.sessions,
      cases: split.cases.length,
      casesScored: sample.length,
    },
    selection: {
      criterion: 'P@20 + MRR@20 on validation',
      split: 'validation',
      selected: tuned.best,
      validation: chosen.validation,
      trials: tuned.trials,
    },
    rows,
    published: publishedSessionsFor(opts.dataset),
    wallSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  return result;
}

export function formatSessionResult(r: SessionEvalResult): string {
  return [
    `${r.dataset} (sessions: every test prefix ranks all ${r.data.items} items; P@20 and MRR@20 in percent; seed ${r.seed})`,
    table([
      ...r.rows.map((row) => ({ model: row.model, 'P@20': row.p20, 'MRR@20': row.mrr20, source: 'this run, test' })),
      ...r.published.map((p) => ({
        model: p.model,
        'P@20': p.p20,
        'MRR@20': p.mrr20,
        source: `published: ${p.source}`,
      })),
    ]),
    `selected on validation (${r.validation.casesScored} of ${r.validation.cases} cases, ${r.selection.trials.length} settings tried): P@20 ${r.selection.validation.p20.toFixed(2)} MRR@20 ${r.selection.validation.mrr20.toFixed(2)}`,
    `whole command ${r.wallSeconds.toFixed(0)} s`,
  ].join('\n');
}
