import {
  coVisitation,
  dropLast,
  evaluate,
  initBackend,
  mostPop,
  publishedFor,
  readDatasetDir,
  trainingCurveSvg,
  type Metrics,
  type Protocol,
  type SasrecConfig,
  type SequenceDataset,
} from '@aisle/ml';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Progress, table } from './progress';
import { trainSequenceModel, type SequenceTrainingReport } from './train-sequence';

export interface SequenceEvalOptions {
  dataset: string;
  protocol: Protocol;
  model: Partial<SasrecConfig>;
  /** Stop training after this many seconds (the best epoch so far is kept). */
  trainBudgetSeconds: number;
  out: string;
  curve: string;
  predictionsOut?: string | undefined;
  /** After early stopping: epochs on the training items plus the validation item (0 = none). */
  fineTune?: { epochs: number; learningRate: number } | undefined;
  /** Data-parallel training replicas (worker threads); < 2 trains in this thread. */
  workers: number;
  /** Evaluate one step earlier (each user's last item removed): "test" is then the validation split. */
  dropLast?: number;
}

export interface SequenceEvalResult {
  dataset: string;
  protocol: Protocol;
  backend: string;
  rows: Array<{ model: string } & Metrics>;
  published: ReturnType<typeof publishedFor>;
  training: SequenceTrainingReport;
  wallSeconds: number;
}

/** `aisle eval --model sasrec`: baselines and SASRec on one data set, one protocol, one run. */
export async function evaluateSequenceModel(opts: SequenceEvalOptions): Promise<SequenceEvalResult> {
  const started = performance.now();
  const progress = new Progress();
  const { backend } = await initBackend({ log: (m) => progress.log(m) });
  const d: SequenceDataset = dropLast(readDatasetDir(opts.dataset), opts.dropLast ?? 0);
  const interactions = d.sequences.reduce((a, s) => a + s.length, 0);
  progress.log(
    `data set ${opts.dataset}: ${d.users.length} users, ${d.itemIds.length - 1} items, ${interactions} interactions; protocol ${describe(opts.protocol)}`,
  );

  const rows: SequenceEvalResult['rows'] = [];
  for (const scorer of [mostPop(d, 'all'), mostPop(d, 'train'), coVisitation(d)]) {
    rows.push({ model: scorer.name, ...(await evaluate(scorer, d, { split: 'test', protocol: opts.protocol })) });
    progress.log(`baseline ${scorer.name}: NDCG@10 ${rows[rows.length - 1]?.ndcg10.toFixed(4)}`);
  }

  const { model, report: training } = await trainSequenceModel(d, {
    protocol: opts.protocol,
    model: opts.model,
    budgetSeconds: opts.trainBudgetSeconds,
    fineTune: opts.fineTune,
    workers: opts.workers,
    progress,
  });

  let predictions: ReturnType<typeof createWriteStream> | undefined;
  if (opts.predictionsOut) {
    mkdirSync(dirname(opts.predictionsOut), { recursive: true });
    predictions = createWriteStream(opts.predictionsOut);
  }
  const test = await evaluate(model, d, {
    split: 'test',
    protocol: opts.protocol,
    ...(predictions
      ? {
          topN: 50,
          onTop: (u: number, items: number[]) =>
            predictions?.write(JSON.stringify({ user: d.users[u], items: items.map((i) => d.itemIds[i]) }) + '\n'),
        }
      : {}),
  });
  if (predictions) await new Promise<void>((r) => predictions?.end(() => r()));
  rows.push({ model: `SASRec (ours, epoch ${training.bestEpoch ?? '-'})`, ...test });
  model.dispose();

  const result: SequenceEvalResult = {
    dataset: opts.dataset,
    protocol: opts.protocol,
    backend,
    rows,
    // One step earlier the figures are validation figures: nothing published compares with them.
    published: opts.dropLast
      ? []
      : publishedFor(opts.dataset).filter(
          (p) => p.protocol === (opts.protocol.kind === 'full' ? 'full' : 'sampled100'),
        ),
    training,
    wallSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  writeFileSync(
    opts.curve,
    trainingCurveSvg(
      `SASRec on ${opts.dataset.split('/').pop()} (${describe(opts.protocol)})`,
      [{ name: 'loss', color: '#d62728', points: training.epochs.map((h) => [h.epoch, h.loss]) }],
      [
        {
          name: 'validation NDCG@10',
          color: '#1f77b4',
          points: training.epochs.map((h) => [h.epoch, h.validation.ndcg10]),
        },
        {
          name: 'validation HR@10',
          color: '#2ca02c',
          points: training.epochs.map((h) => [h.epoch, h.validation.hr10]),
        },
      ],
    ),
  );
  return result;
}

export function describe(p: Protocol): string {
  return p.kind === 'full'
    ? 'full ranking, earlier items excluded'
    : `${p.negatives} sampled negatives, seed ${p.seed}, at most ${p.maxUsers} users`;
}

export function formatSequenceResult(r: SequenceEvalResult): string {
  const fmt = (x: number | undefined) => (x === undefined ? '-' : x);
  const ours = r.rows.map((row) => ({
    model: row.model,
    'HR@10': row.hr10,
    'NDCG@10': row.ndcg10,
    'HR@20': row.hr20,
    'NDCG@20': row.ndcg20,
    MRR: row.mrr,
    source: 'this run',
  }));
  const published = r.published.map((p) => ({
    model: p.model,
    'HR@10': fmt(p.hr10),
    'NDCG@10': fmt(p.ndcg10),
    'HR@20': fmt(p.hr20),
    'NDCG@20': fmt(p.ndcg20),
    MRR: '-',
    source: `published: ${p.source}`,
  }));
  return [
    `${r.dataset} (${describe(r.protocol)}), backend ${r.backend}`,
    table([...ours, ...published]),
    `training ${r.training.seconds.toFixed(0)} s (best epoch ${r.training.bestEpoch ?? '-'} of ${r.training.epochs.length}); whole command ${r.wallSeconds.toFixed(0)} s`,
  ].join('\n');
}
