/**
 * `pnpm bench embedding`: SASRec inference through onnxruntime-node with and without the dynamic batcher,
 * against raw batched session.run measured in the same run. AISLE_ORT_PROVIDERS (e.g. cuda,cpu) picks the
 * execution provider; the table says which one ran and why another was not used.
 */
import {
  createSession,
  DynamicBatcher,
  exportSasrec,
  initBackend,
  mulberry32,
  Sasrec,
  sasrecFeeds,
  sasrecResults,
  tf,
  type Provider,
  type SasrecRow,
} from '@aisle/ml';
import { load } from './load';
import { report, type Row } from './report';

const ITEMS = Number(process.env['BENCH_ITEMS'] ?? 20_000);
const DIM = Number(process.env['BENCH_DIM'] ?? 64);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 6);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 64);
const MAX_BATCH = Number(process.env['BENCH_MAX_BATCH'] ?? 16);
const providers = (process.env['AISLE_ORT_PROVIDERS'] ?? 'cpu').split(',').map((p) => p.trim()) as Provider[];

async function main(): Promise<void> {
  await initBackend({});
  // Inference cost does not depend on what the weights learned: random weights of a realistic size.
  const model = new Sasrec(ITEMS, { dim: DIM, layers: 2, heads: 2, ffn: DIM, maxLen: 50 });
  for (const v of model.variables()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 1)));
  const onnx = exportSasrec(model);
  model.dispose();
  const session = await createSession(onnx, { providers });
  const rand = mulberry32(7);
  const history = () => Array.from({ length: 20 }, () => 1 + Math.floor(rand() * ITEMS));
  const K = 100;
  const run = async (hs: number[][]): Promise<SasrecRow[]> =>
    sasrecResults(
      await session.run(
        sasrecFeeds(
          hs,
          hs.map(() => []),
          K,
          50,
        ),
      ),
      hs.length,
      DIM,
      hs.map(() => K),
    );
  for (let i = 0; i < 20; i++) await run([history()]);

  const rows: Row[] = [];
  // Ceiling: one caller running full batches back to back.
  const raw = await load(() => run(Array.from({ length: MAX_BATCH }, history)), { concurrency: 1, seconds: SECONDS });
  const rawSeqs = raw.qps * MAX_BATCH;
  rows.push({
    mode: `raw session.run, batch ${MAX_BATCH} (ceiling)`,
    callers: 1,
    'sequences/s': Math.round(rawSeqs),
    'p50 ms': raw.p50,
    'p99 ms': raw.p99,
    'vs ceiling': 1,
  });
  // One request = one sequence, many concurrent callers, no batching: each runs alone.
  const single = await load(() => run([history()]), { concurrency: CONCURRENCY, seconds: SECONDS });
  rows.push({
    mode: 'no batcher (batch 1 per request)',
    callers: CONCURRENCY,
    'sequences/s': Math.round(single.qps),
    'p50 ms': single.p50,
    'p99 ms': single.p99,
    'vs ceiling': single.qps / rawSeqs,
  });
  // The same callers through the dynamic batcher.
  const batcher = new DynamicBatcher<number[], SasrecRow>(run, { maxBatch: MAX_BATCH, maxDelayMs: 2, budgetMs: 1000 });
  const batched = await load(() => batcher.submit(history()), { concurrency: CONCURRENCY, seconds: SECONDS });
  rows.push({
    mode: `dynamic batcher (max ${MAX_BATCH}, 2 ms)`,
    callers: CONCURRENCY,
    'sequences/s': Math.round(batched.qps),
    'p50 ms': batched.p50,
    'p99 ms': batched.p99,
    'vs ceiling': batched.qps / rawSeqs,
  });
  const lone = await load(() => batcher.submit(history()), { concurrency: 1, seconds: SECONDS / 2 });
  rows.push({
    mode: 'dynamic batcher, one caller',
    callers: 1,
    'sequences/s': Math.round(lone.qps),
    'p50 ms': lone.p50,
    'p99 ms': lone.p99,
    'vs ceiling': lone.qps / rawSeqs,
  });
  await batcher.close();
  report('embedding', rows, {
    provider: session.provider,
    requestedProviders: providers,
    fallbackReason: session.fallbackReason ?? null,
    model: { items: ITEMS, dim: DIM, layers: 2, maxLen: 50, historyLength: 20, k: K },
    goal: 'batcher >= 0.8 x raw batched session.run',
    batcherStats: batcher.stats,
  });
  process.stdout.write(
    `execution provider: ${session.provider}${session.fallbackReason ? ` (fallback: ${session.fallbackReason})` : ''}\n`,
  );
  await session.release();
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
