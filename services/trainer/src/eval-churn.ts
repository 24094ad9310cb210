import {
  bestF1Threshold,
  brier,
  churnFeatures,
  ChurnClassifier,
  expectedPurchases,
  f1At,
  fitBgNbd,
  initBackend,
  mulberry32,
  prAuc,
  probabilityNoPurchase,
  readCdnow,
  rocAuc,
  selectChurnModel,
  shuffleInPlace,
  summarizeTransactions,
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
