/**
 * Data-parallel training (worker threads, gradients averaged through a SharedArrayBuffer) computes the
 * same updates as training in one thread: with dropout off and full softmax, the weights after an epoch
 * agree to float rounding. Runs the compiled worker (dist), like the CLI does.
 */
import { generateShop } from '@aisle/datagen';
import { fromEvents, initBackend, Sasrec, SharedGradientExchange } from '../src';

jest.setTimeout(120_000);

test('two replicas train to the same weights as one thread', async () => {
  await initBackend({});
  const shop = generateShop({ seed: 5, users: 200, items: 80, days: 30 });
  const d = fromEvents('shop', shop.events);
  const cfg = {
    dim: 16,
    layers: 1,
    heads: 2,
    ffn: 16,
    maxLen: 12,
    dropout: 0,
    epochs: 2,
    patience: 9,
    seed: 4,
    learningRate: 0.01,
  };
  const validate = () => Promise.resolve({ hr10: 0, ndcg10: 0, hr20: 0, ndcg20: 0, mrr: 0, users: 0 });
  // Variable names are global in TF.js: one model at a time.
  const local = new Sasrec(d.itemIds.length - 1, { ...cfg, batchSequences: 32 });
  const before = local.weightArrays();
  const a = await local.fit(d, { validate });
  const wa = local.weightArrays();
  local.dispose();
  const parallel = new Sasrec(d.itemIds.length - 1, { ...cfg, batchSequences: 32 });
  const b = await parallel.fit(d, { validate, workers: 2 });
  expect(b.history).toHaveLength(2);
  expect(Math.abs((a.history[1]?.loss ?? 0) - (b.history[1]?.loss ?? 1))).toBeLessThan(1e-3);
  const wb = parallel.weightArrays();
  parallel.dispose();
  let maxDiff = 0;
  let moved = 0;
  wa.forEach((x, i) =>
    x.forEach((v, j) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - ((wb[i] as Float32Array)[j] as number)));
      moved = Math.max(moved, Math.abs(v - ((before[i] as Float32Array)[j] as number)));
    }),
  );
  expect(moved).toBeGreaterThan(1e-2);
  console.log(`moved ${moved.toFixed(4)}, replicas vs one thread ${maxDiff.toExponential(2)}`);
  expect(maxDiff).toBeLessThan(moved / 20);
});

test('the exchange weights each replica by its targets and skips empty shares', async () => {
  const sizes = [2, 1];
  const buffer = new SharedArrayBuffer(SharedGradientExchange.byteLength(2, sizes));
  const r0 = new SharedGradientExchange(buffer, 0, 2, sizes, 5_000);
  // Replica 1 runs in a worker thread (a replica blocks at the barrier until the other arrives).
  const { Worker } = await import('node:worker_threads');
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { SharedGradientExchange } = require(workerData.module);
    const x = new SharedGradientExchange(workerData.buffer, 1, 2, [2, 1], 5000);
    const a = x.allReduce(0, [Float32Array.from([3, 3]), Float32Array.from([3])], 1, 2);
    const first = [Array.from(a.grads[0]), a.targets, a.loss];
    const b = x.allReduce(1, undefined, 0, 0);
    parentPort.postMessage([...first, Array.from(b.grads[1]), b.targets]);
  `;
  const w = new Worker(code, {
    eval: true,
    workerData: { buffer, module: require.resolve('../dist/nn/gradient-exchange.js') },
  });
  const fromWorker = new Promise<unknown[]>((resolve) => w.once('message', resolve));
  // Results are views into a buffer the next step reuses: read them before the next call.
  const a = r0.allReduce(0, [Float32Array.from([0, 0]), Float32Array.from([6])], 2, 5);
  expect(Array.from(a.grads[0] as Float32Array)).toEqual([1, 1]);
  expect(Array.from(a.grads[1] as Float32Array)).toEqual([5]);
  expect(a.targets).toBe(3);
  expect(a.loss).toBe(4);
  const b = r0.allReduce(1, [Float32Array.from([1, 2]), Float32Array.from([4])], 4, 1);
  expect(Array.from(b.grads[0] as Float32Array)).toEqual([1, 2]);
  expect(b.targets).toBe(4);
  expect(await fromWorker).toEqual([[1, 1], 3, 4, [4], 4]);
  await w.terminate();
});
