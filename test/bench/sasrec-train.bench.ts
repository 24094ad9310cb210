/**
 * `pnpm bench sasrec-train`: SASRec training speed on Amazon Beauty (../shared/data), steps/s and seconds
 * per epoch, in one run: one thread vs data-parallel worker threads, full softmax vs sampled softmax
 * with the log-Q correction. Ratios are to the first row (one thread, full softmax), measured in the same
 * run; the load average is printed with each row because the machine may be shared.
 * BENCH_USERS (default all) trains on the first N users to keep a run short; BENCH_EPOCHS (default 1).
 */
import { initBackend, readDatasetDir, Sasrec, trainPart, type SasrecConfig } from '@aisle/ml';
import { repoRoot } from '@aisle/testkit';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { report, type Row } from './report';

const DATASET = process.env['BENCH_DATASET'] ?? join(repoRoot, '..', 'shared', 'data', 'amazon-beauty');
const USERS = Number(process.env['BENCH_USERS'] ?? 0);
const EPOCHS = Number(process.env['BENCH_EPOCHS'] ?? 1);
const WORKERS = Number(process.env['BENCH_WORKERS'] ?? 2);

async function main(): Promise<void> {
  await initBackend({});
  const d = readDatasetDir(DATASET);
  const all = d.sequences.map((s) => trainPart(s));
  const train = USERS > 0 ? all.slice(0, USERS) : all;
  const variants: Array<{ name: string; workers: number; loss: SasrecConfig['loss'] }> = [
    { name: 'one thread, full softmax', workers: 0, loss: { kind: 'full' } },
    { name: `${WORKERS} workers, full softmax`, workers: WORKERS, loss: { kind: 'full' } },
    {
      name: 'one thread, sampled-logq:2000',
      workers: 0,
      loss: { kind: 'sampled', negatives: 2000, sampler: 'popularity' },
    },
    {
      name: `${WORKERS} workers, sampled-logq:2000`,
      workers: WORKERS,
      loss: { kind: 'sampled', negatives: 2000, sampler: 'popularity' },
    },
  ];
  const rows: Row[] = [];
  let base = 0;
  const noValidation = () => Promise.resolve({ hr10: 0, ndcg10: 0, hr20: 0, ndcg20: 0, mrr: 0, users: 0 });
  for (const v of variants) {
    const model = new Sasrec(d.itemIds.length - 1, { epochs: EPOCHS, patience: 99, loss: v.loss, seed: 1 });
    let steps = 0;
    const load = loadavg()[0] ?? 0;
    const r = await model.fit(d, {
      train,
      workers: v.workers,
      validate: noValidation,
      onStep: (s) => (steps = s.steps),
    });
    model.dispose();
    const seconds = r.history.reduce((a, h) => a + h.seconds, 0) / r.history.length;
    if (!base) base = seconds;
    rows.push({
      variant: v.name,
      'steps/epoch': steps,
      's/epoch': seconds,
      'steps/s': steps / seconds,
      'speed vs first': base / seconds,
      'last loss': r.history[r.history.length - 1]?.loss ?? Number.NaN,
      'load avg at start': load,
    });
    process.stderr.write(`${v.name}: ${seconds.toFixed(1)} s/epoch\n`);
  }
  report('sasrec-train', rows, { dataset: DATASET, users: train.length, epochs: EPOCHS });
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
