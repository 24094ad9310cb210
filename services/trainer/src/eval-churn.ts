import {
  bestF1Threshold,
  brier,
  churnFeatures,
  ChurnClassifier,
  expectedPurchases,
  f1At,
  fitBgNbd,
  fitGbdt,
  initBackend,
  mulberry32,
  prAuc,
  randomFolds,
  probabilityNoPurchase,
  readCdnow,
  rocAuc,
  selectChurnModel,
  shuffleInPlace,
  summarizeTransactions,
  type ActivitySummary,
  type BgNbdParams,
  type ChurnConfig,
  type RfmSummary,
  type Transaction,
} from '@aisle/ml';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Progress, table } from './progress';

const DAY = 86_400_000;
const WEEK = 7 * DAY;

/** The CDNOW protocol of ../shared/data/README.md. */
export const CDNOW_PROTOCOL = {
  calibrationStart: Date.UTC(1997, 0, 1),
  /** First day after calibration (calibration ends 1997-09-30). */
  cutoff: Date.UTC(1997, 9, 1),
  holdoutEnd: Date.UTC(1998, 6, 1),
};

export const CDNOW_REFERENCE = {
  bgnbd: { r: 0.252, alpha: 4.789, a: 0.723, b: 2.161 },
  aucAll: { expectedPurchases: 0.763, recency: 0.759, frequency: 0.753 },
};

interface MethodRow {
  method: string;
  rocAuc: number;
  prAuc: number;
  f1: number | undefined;
  brier: number | undefined;
}

/** BG/NBD summary in weeks, calibration ending the day before the cut-off (as in lifetimes). */
export function rfmSummary(txs: readonly Transaction[], cutoff: number): Map<string, RfmSummary> {
  const days = new Map<string, Set<number>>();
  for (const t of txs)
    if (t.at < cutoff) (days.get(t.customer) ?? days.set(t.customer, new Set()).get(t.customer))?.add(t.at);
  const end = cutoff - DAY;
  const out = new Map<string, RfmSummary>();
  for (const [c, set] of days) {
    const d = [...set].sort((a, b) => a - b);
    const first = d[0] as number;
    out.set(c, { x: d.length - 1, tx: ((d[d.length - 1] as number) - first) / WEEK, T: (end - first) / WEEK });
  }
  return out;
}

/**
 * Extra features for the cross-validation study (not served): BG/NBD's expected purchases and P(no
 * purchase) in the horizon, and the shape of the gaps between purchase days.
 */
function studyFeatures(
  s: ActivitySummary,
  cutoff: number,
  bg: BgNbdParams,
  r: RfmSummary,
  horizonWeeks: number,
): number[] {
  const days = [...new Set(s.recentEvents)].sort((a, b) => a - b);
  const gaps = days.slice(1).map((t, i) => (t - (days[i] as number)) / DAY);
  const mean = gaps.reduce((a, b) => a + b, 0) / Math.max(1, gaps.length);
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / Math.max(1, gaps.length));
  const spentOn = (at: number) => s.recentPurchases.filter((p) => p.at === at).reduce((a, p) => a + p.amount, 0);
  return [
    ...churnFeatures(s, cutoff),
    Math.log(expectedPurchases(bg, r, horizonWeeks)),
    probabilityNoPurchase(bg, r, horizonWeeks),
    Math.log1p(sd / (mean + 1)),
    Math.log1p(gaps[0] ?? 365),
    Math.log1p(gaps[gaps.length - 1] ?? 365),
    Math.log1p(spentOn(s.lastAt)) - Math.log1p(s.spend / Math.max(1, s.visits)),
  ];
}

interface StudyRow {
  model: string;
  foldRocAuc: number[];
  cvRocAuc: number;
  /** Mean over folds of (this model's ROC AUC - BG/NBD's) on the same validation fold. */
  marginOverBgNbd: number;
}

/**
 * Would another model family have done better? The served logistic regression, gradient-boosted trees on
 * the same features, and gradient-boosted trees on those plus BG/NBD's scores and gap statistics, each
 * scored against BG/NBD on the same validation folds of the training customers. BG/NBD is fit in each
 * fold on that fold's training customers (their calibration data: no labels), so neither the held-out
 * fold nor the test customers shape any row.
 */
async function modelFamilyStudy(
  X: readonly Float32Array[],
  rfm: readonly RfmSummary[],
  wideOf: (i: number, bg: BgNbdParams) => number[],
  bgScoreOf: (i: number, bg: BgNbdParams) => number,
  y: readonly number[],
  logistic: ChurnConfig,
  seed: number,
  folds = 5,
): Promise<StudyRow[]> {
  /** What a fold's BG/NBD fit gives every row: the wide features and BG/NBD's score. */
  interface Fold {
    wide: number[][];
    bgScore: number[];
  }
  const labels = (rows: number[]) => rows.map((i) => y[i] as number);
  const families: Array<{ model: string; fit: (rows: number[], f: Fold) => Promise<(i: number) => number> }> = [
    {
      model: `logistic regression, l2 ${logistic.l2} (served)`,
      fit: async (rows) => {
        const clf = new ChurnClassifier(logistic);
        await clf.fit(
          rows.map((i) => X[i] as Float32Array),
          labels(rows),
        );
        return (i) => clf.logit(X[i] as Float32Array);
      },
    },
    {
      model: 'gradient-boosted trees (150 x depth 3), same features',
      fit: async (rows) => {
        const f = fitGbdt(
          rows.map((i) => X[i] as Float32Array),
          labels(rows),
        );
        return (i) => f(X[i] as Float32Array);
      },
    },
    {
      model: 'gradient-boosted trees, + BG/NBD scores and gap statistics',
      fit: async (rows, { wide }) => {
        const f = fitGbdt(
          rows.map((i) => wide[i] as number[]),
          labels(rows),
        );
        return (i) => f(wide[i] as number[]);
      },
    },
    {
      model: "BG/NBD: -E[purchases in holdout] (fit on the fold's training customers)",
      fit:
        async (_, { bgScore }) =>
        (i) =>
          bgScore[i] as number,
    },
  ];
  const fold = randomFolds(X.length, folds, seed + 1);
  const out: StudyRow[] = families.map((f) => ({ model: f.model, foldRocAuc: [], cvRocAuc: 0, marginOverBgNbd: 0 }));
  for (let k = 0; k < folds; k++) {
    const tr = X.map((_, i) => i).filter((i) => fold[i] !== k);
    const va = X.map((_, i) => i).filter((i) => fold[i] === k);
    const bg = fitBgNbd(tr.map((i) => rfm[i] as RfmSummary));
    const f: Fold = { wide: X.map((_, i) => wideOf(i, bg)), bgScore: X.map((_, i) => bgScoreOf(i, bg)) };
    for (const [m, family] of families.entries()) {
      const score = await family.fit(tr, f);
      (out[m] as StudyRow).foldRocAuc.push(rocAuc(va.map(score), labels(va)));
    }
  }
  const bgFolds = (out[out.length - 1] as StudyRow).foldRocAuc;
  for (const row of out) {
    row.cvRocAuc = row.foldRocAuc.reduce((a, b) => a + b, 0) / folds;
    row.marginOverBgNbd = row.foldRocAuc.reduce((a, v, k) => a + v - (bgFolds[k] as number), 0) / folds;
  }
  return out;
}

export async function evaluateChurn(opts: {
  dataset: string;
  seed: number;
  out: string;
  testShare: number;
}): Promise<{ summary: string }> {
  const started = performance.now();
  const progress = new Progress();
  const { backend } = await initBackend({ log: (m) => progress.log(m) });
  const txs = readCdnow(join(opts.dataset, 'CDNOW_master.txt'));
  const { cutoff, holdoutEnd } = CDNOW_PROTOCOL;
  const summaries = summarizeTransactions(txs, cutoff);
  const activeLater = new Set(txs.filter((t) => t.at >= cutoff && t.at < holdoutEnd).map((t) => t.customer));
  const customers = [...summaries.keys()].sort();
  const label = (c: string) => (activeLater.has(c) ? 0 : 1);
  progress.log(
    `CDNOW: ${customers.length} customers, ${((customers.filter((c) => label(c)).length / customers.length) * 100).toFixed(1)}% churned (no purchase 1997-10-01..1998-06-30)`,
  );

  const rfm = rfmSummary(txs, cutoff);
  const bg = fitBgNbd([...rfm.values()]);
  const holdoutWeeks = (holdoutEnd - cutoff) / WEEK;
  progress.log(
    `BG/NBD fit on all calibration data: r ${bg.r.toFixed(3)}, alpha ${bg.alpha.toFixed(3)}, a ${bg.a.toFixed(3)}, b ${bg.b.toFixed(3)} (reference r 0.252, alpha 4.789, a 0.723, b 2.161)`,
  );

  const X = new Map(customers.map((c) => [c, churnFeatures(summaries.get(c) as never, cutoff)]));
  const recency = (c: string) => (cutoff - (summaries.get(c)?.lastAt ?? cutoff)) / DAY;
  const frequency = (c: string) => rfm.get(c)?.x ?? 0;
  const expected = (c: string) => expectedPurchases(bg, rfm.get(c) as RfmSummary, holdoutWeeks);

  // Reference check on all customers (unsupervised scores, no split needed).
  const allLabels = customers.map(label);
  const aucAll = {
    expectedPurchases: rocAuc(
      customers.map((c) => -expected(c)),
      allLabels,
    ),
    recency: rocAuc(customers.map(recency), allLabels),
    frequency: rocAuc(
      customers.map((c) => -frequency(c)),
      allLabels,
    ),
  };

  const shuffled = shuffleInPlace([...customers], mulberry32(opts.seed));
  const nTest = Math.round(shuffled.length * opts.testShare);
  const test = shuffled.slice(0, nTest);
  const train = shuffled.slice(nTest);
  const yTrain = train.map(label);
  const yTest = test.map(label);

  // The model is chosen by cross-validation on the training customers; test customers are read once below.
  const selection = await selectChurnModel(
    train.map((c) => X.get(c) as Float32Array),
    yTrain,
    { folds: 5, seed: opts.seed },
  );
  for (const c of selection.candidates)
    progress.log(`cross-validation l2 ${c.config.l2}: ROC AUC ${c.cvRocAuc.toFixed(4)} (training customers, 5 folds)`);
  const clf = new ChurnClassifier(selection.selected);
  await clf.fit(
    train.map((c) => X.get(c) as Float32Array),
    yTrain,
  );
  clf.threshold = bestF1Threshold(
    train.map((c) => clf.predict(X.get(c) as Float32Array)),
    yTrain,
  );
  const study = await modelFamilyStudy(
    train.map((c) => X.get(c) as Float32Array),
    train.map((c) => rfm.get(c) as RfmSummary),
    (i, foldBg) =>
      studyFeatures(
        summaries.get(train[i] as string) as ActivitySummary,
        cutoff,
        foldBg,
        rfm.get(train[i] as string) as RfmSummary,
        holdoutWeeks,
      ),
    (i, foldBg) => -expectedPurchases(foldBg, rfm.get(train[i] as string) as RfmSummary, holdoutWeeks),
    yTrain,
    selection.selected,
    opts.seed,
  );
  for (const r of study)
    progress.log(
      `study, ${r.model}: cross-validated ROC AUC ${r.cvRocAuc.toFixed(4)}, ${r.marginOverBgNbd >= 0 ? '+' : ''}${r.marginOverBgNbd.toFixed(4)} over BG/NBD on the same folds`,
    );

  // Test customers are read here, once.
  const pTest = test.map((c) => clf.predict(X.get(c) as Float32Array));

  // Recency-only, calibrated by a one-feature logistic fit on the training customers.
  const recencyClf = new ChurnClassifier();
  const recOnly = (c: string) => {
    const x = new Float32Array(X.get(c) as Float32Array);
    return x.map((v, j) => (j === 0 ? v : 0));
  };
  await recencyClf.fit(train.map(recOnly), yTrain);
  recencyClf.threshold = bestF1Threshold(
    train.map((c) => recencyClf.predict(recOnly(c))),
    yTrain,
  );
  const pRec = test.map((c) => recencyClf.predict(recOnly(c)));

  const bgTrainP = train.map((c) => probabilityNoPurchase(bg, rfm.get(c) as RfmSummary, holdoutWeeks));
  const bgThreshold = bestF1Threshold(bgTrainP, yTrain);
  const pBg = test.map((c) => probabilityNoPurchase(bg, rfm.get(c) as RfmSummary, holdoutWeeks));

  const rows: MethodRow[] = [
    {
      method: 'logistic on behaviour features (ours)',
      rocAuc: rocAuc(pTest, yTest),
      prAuc: prAuc(pTest, yTest),
      f1: f1At(pTest, yTest, clf.threshold).f1,
      brier: brier(pTest, yTest),
    },
    {
      method: 'recency only (logistic)',
      rocAuc: rocAuc(pRec, yTest),
      prAuc: prAuc(pRec, yTest),
      f1: f1At(pRec, yTest, recencyClf.threshold).f1,
      brier: brier(pRec, yTest),
    },
    {
      method: 'BG/NBD: -E[purchases in holdout]',
      rocAuc: rocAuc(
        test.map((c) => -expected(c)),
        yTest,
      ),
      prAuc: prAuc(
        test.map((c) => -expected(c)),
        yTest,
      ),
      f1: undefined,
      brier: undefined,
    },
    {
      method: 'BG/NBD: P(no purchase in holdout)',
      rocAuc: rocAuc(pBg, yTest),
      prAuc: prAuc(pBg, yTest),
      f1: f1At(pBg, yTest, bgThreshold).f1,
      brier: brier(pBg, yTest),
    },
  ];
  const examples = test.slice(0, 3).map((c) => ({
    customer: c,
    risk: clf.predict(X.get(c) as Float32Array),
    factors: clf.factors(X.get(c) as Float32Array),
  }));
  const wallSeconds = (performance.now() - started) / 1000;
  const result = {
    dataset: opts.dataset,
    protocol: CDNOW_PROTOCOL,
    backend,
    customers: customers.length,
    test: test.length,
    bgnbd: bg,
    reference: CDNOW_REFERENCE,
    aucAll,
    threshold: clf.threshold,
    selection: { ...selection, split: 'training customers (cross-validation); test customers read once after' },
    study: {
      split:
        "training customers, 5 folds (not the selection folds), BG/NBD fit on each fold's training customers; not served",
      rows: study,
    },
    rows,
    examples,
    wallSeconds,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  const summary = [
    `CDNOW churn: features at 1997-09-30, label = no purchase until 1998-06-30; ${train.length} training / ${test.length} test customers (seed ${opts.seed})`,
    table(
      rows.map((r) => ({
        method: r.method,
        'ROC AUC': r.rocAuc,
        'PR AUC': r.prAuc,
        F1: r.f1 ?? '-',
        Brier: r.brier ?? '-',
      })),
    ),
    `model: logistic regression, l2 ${selection.selected.l2} chosen by ${selection.criterion} (${selection.candidates.map((c) => `${c.config.l2}: ${c.cvRocAuc.toFixed(4)}`).join(', ')}); threshold ${clf.threshold} (best F1 on training customers)`,
    'model-family study on the training customers (5-fold cross-validation; test customers unread):',
    table(
      study.map((r) => ({
        model: r.model,
        'CV ROC AUC': r.cvRocAuc,
        'min fold': Math.min(...r.foldRocAuc),
        'max fold': Math.max(...r.foldRocAuc),
        'vs BG/NBD': r.marginOverBgNbd,
      })),
    ),
    `BG/NBD fit: r ${bg.r.toFixed(3)} alpha ${bg.alpha.toFixed(3)} a ${bg.a.toFixed(3)} b ${bg.b.toFixed(3)}; reference r 0.252 alpha 4.789 a 0.723 b 2.161`,
    `ROC AUC on all customers: expected purchases ${aucAll.expectedPurchases.toFixed(3)} (ref 0.763), recency ${aucAll.recency.toFixed(3)} (ref 0.759), frequency ${aucAll.frequency.toFixed(3)} (ref 0.753)`,
    ...examples.map(
      (e) =>
        `customer ${e.customer}: risk ${e.risk.toFixed(3)}, top factors ${e.factors.map((f) => `${f.feature} ${f.contribution >= 0 ? '+' : ''}${f.contribution.toFixed(2)}`).join(', ')}`,
    ),
    `whole command ${wallSeconds.toFixed(0)} s`,
  ].join('\n');
  return { summary };
}
