import {
  coVisitation,
  evaluate,
  initBackend,
  mostPop,
  publishedFor,
  readDatasetDir,
  sasrecFor,
  trainingCurveSvg,
  type EpochReport,
  type Metrics,
  type Protocol,
  type SasrecConfig,
  type SequenceDataset,
} from '@aisle/ml';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Progress, table } from './progress';

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
}

export interface SequenceEvalResult {
  dataset: string;
  protocol: Protocol;
  backend: string;
  rows: Array<{ model: string } & Metrics>;
  published: ReturnType<typeof publishedFor>;
  training: {
    epochs: EpochReport[];
    bestEpoch: number | undefined;
    seconds: number;
    config: SasrecConfig;
    workers: number;
  };
  wallSeconds: number;
}

/** `aisle eval --model sasrec`: baselines and SASRec on one data set, one protocol, one run. */
export async function evaluateSequenceModel(opts: SequenceEvalOptions): Promise<SequenceEvalResult> {
  const started = performance.now();
  const progress = new Progress();
  const { backend } = await initBackend({ log: (m) => progress.log(m) });
  const d: SequenceDataset = readDatasetDir(opts.dataset);
  const interactions = d.sequences.reduce((a, s) => a + s.length, 0);
  progress.log(
    `data set ${opts.dataset}: ${d.users.length} users, ${d.itemIds.length - 1} items, ${interactions} interactions; protocol ${describe(opts.protocol)}`,
  );

  const rows: SequenceEvalResult['rows'] = [];
  for (const scorer of [mostPop(d, 'all'), mostPop(d, 'train'), coVisitation(d)]) {
    rows.push({ model: scorer.name, ...(await evaluate(scorer, d, { split: 'test', protocol: opts.protocol })) });
    progress.log(`baseline ${scorer.name}: NDCG@10 ${rows[rows.length - 1]?.ndcg10.toFixed(4)}`);
  }

  const model = sasrecFor(d, opts.model);
  progress.log(
    `training SASRec ${JSON.stringify(model.cfg)} ${opts.workers >= 2 ? `on ${opts.workers} data-parallel workers` : 'in one thread'}`,
  );
  const trainStart = performance.now();
  const deadline = trainStart + opts.trainBudgetSeconds * 1000;
  let epochMs = 0;
  const reserve = () => (opts.fineTune?.epochs ?? 0) * epochMs * 1.15;
  const { best, history } = await model.fit(d, {
    workers: opts.workers,
    onStep: (r) => progress.step(r),
    onEpoch: (r) => {
      epochMs = r.seconds * 1000;
      progress.log(
        `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, ${r.seconds.toFixed(0)} s, validation NDCG@10 ${r.validation.ndcg10.toFixed(4)} HR@10 ${r.validation.hr10.toFixed(4)}${r.best ? ' (best)' : ''}`,
      );
    },
    validate: (m) => evaluate(m, d, { split: 'valid', protocol: opts.protocol, users: validationUsers(d, opts) }),
    // Leave time for the fine-tuning epochs (each about as long as a training epoch).
    shouldStop: () => performance.now() + reserve() > deadline,
  });
  if (opts.fineTune && opts.fineTune.epochs > 0) {
    progress.log(
      `fine-tuning ${opts.fineTune.epochs} epoch(s) on training + validation items at lr ${opts.fineTune.learningRate}`,
    );
    const losses = await model.fineTuneWithValidation(d, {
      ...opts.fineTune,
      workers: opts.workers,
      onStep: (r) => progress.step(r),
    });
    progress.log(`fine-tuned: loss ${losses.map((l) => l.toFixed(4)).join(', ')}`);
  }
  const trainSeconds = (performance.now() - trainStart) / 1000;

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
  rows.push({ model: `SASRec (ours, epoch ${best?.epoch ?? '-'})`, ...test });
  model.dispose();

  const result: SequenceEvalResult = {
    dataset: opts.dataset,
    protocol: opts.protocol,
    backend,
    rows,
    published: publishedFor(opts.dataset).filter(
      (p) => p.protocol === (opts.protocol.kind === 'full' ? 'full' : 'sampled100'),
    ),
    training: {
      epochs: history,
      bestEpoch: best?.epoch,
      seconds: trainSeconds,
      config: model.cfg,
      workers: opts.workers,
    },
    wallSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  writeFileSync(
    opts.curve,
    trainingCurveSvg(
      `SASRec on ${opts.dataset.split('/').pop()} (${describe(opts.protocol)})`,
      [{ name: 'loss', color: '#d62728', points: history.map((h) => [h.epoch, h.loss]) }],
      [
        { name: 'validation NDCG@10', color: '#1f77b4', points: history.map((h) => [h.epoch, h.validation.ndcg10]) },
        { name: 'validation HR@10', color: '#2ca02c', points: history.map((h) => [h.epoch, h.validation.hr10]) },
      ],
    ),
  );
  return result;
}

function validationUsers(d: SequenceDataset, opts: SequenceEvalOptions): number[] | undefined {
  // Full ranking on every user each epoch costs more than it tells; 10,000 users keep the estimate tight.
  const users = d.sequences.map((_, u) => u).filter((u) => (d.sequences[u]?.length ?? 0) >= 3);
  if (opts.protocol.kind === 'sampled') return undefined;
  return users.length > 10_000 ? users.filter((_, i) => i % Math.ceil(users.length / 10_000) === 0) : users;
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
