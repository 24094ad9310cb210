import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SharedGradientExchange } from '../nn/gradient-exchange';
import type { Sasrec, SasrecConfig, StepReport } from './sasrec';
import type { EpochRunner, EpochSpec } from './sasrec-training';

/**
 * Data-parallel training on worker threads. TF.js's wasm backend runs one thread in Node (its threaded
 * build starts workers from blob: URLs, which Node refuses), so each worker loads its own wasm backend
 * and a replica of the model; replicas average gradients every step through a SharedArrayBuffer
 * (`SharedGradientExchange`). Measured here: two workers ran the output-layer matmuls at 1.89x one.
 */

/** What a worker is started with. */
export interface SasrecWorkerData {
  numItems: number;
  cfg: SasrecConfig;
  rank: number;
  replicas: number;
  buffer: SharedArrayBuffer;
  sizes: number[];
}

export type SasrecWorkerRequest =
  | { id: number; op: 'setWeights'; weights: Float32Array[] }
  | { id: number; op: 'getWeights' }
  | { id: number; op: 'resetOptimizer'; learningRate: number }
  | { id: number; op: 'epoch'; flat: Int32Array; offsets: Int32Array; spec: EpochSpec };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export type SasrecWorkerMessage =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: string }
  | { op: 'ready' }
  | { op: 'step'; report: StepReport };

export class WorkerFailedError extends Error {
  override readonly name = 'WorkerFailedError';
}

/** Default replica count: one per core, at most 4 (each halves the per-replica batch). */
export function defaultTrainWorkers(): number {
  const cores = availableParallelism();
  return cores >= 2 ? Math.min(4, cores) : 0;
}

/** The compiled worker script (next to this file in dist; from src under jest, the built copy). */
function workerScript(): string {
  const here = join(__dirname, 'sasrec-worker.js');
  if (existsSync(here)) return here;
  const built = join(__dirname, '..', '..', 'dist', 'models', 'sasrec-worker.js');
  if (existsSync(built)) return built;
  throw new WorkerFailedError(`no compiled sasrec-worker.js next to ${__dirname} (run pnpm build)`);
}

function flatten(seqs: readonly Int32Array[]): { flat: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(seqs.length + 1);
  seqs.forEach((s, i) => (offsets[i + 1] = (offsets[i] as number) + s.length));
  const flat = new Int32Array(offsets[seqs.length] as number);
  seqs.forEach((s, i) => flat.set(s, offsets[i] as number));
  return { flat, offsets };
}

export function unflatten(flat: Int32Array, offsets: Int32Array): Int32Array[] {
  const out: Int32Array[] = [];
  for (let i = 0; i + 1 < offsets.length; i++) out.push(flat.subarray(offsets[i] as number, offsets[i + 1] as number));
  return out;
}

class WorkerHandle {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;
  onStep: ((r: StepReport) => void) | undefined;
  readonly ready: Promise<void>;

  constructor(readonly worker: Worker) {
    let ready: () => void = () => undefined;
    let failed: (e: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    worker.on('message', (m: SasrecWorkerMessage) => {
      if ('op' in m) {
        if (m.op === 'ready') ready();
        else this.onStep?.(m.report);
        return;
      }
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.result);
      else p?.reject(new WorkerFailedError(m.error));
    });
    const fail = (err: Error) => {
      this.failure = err;
      failed(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new WorkerFailedError(`training worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => fail(new WorkerFailedError(`training worker exited (code ${code})`)));
  }

  call<T>(req: WithoutId<SasrecWorkerRequest>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }
}

/** Runs epochs on `replicas` worker threads; the model in this thread is kept for validation and export. */
export class WorkerPoolRunner implements EpochRunner {
  private constructor(
    private readonly model: Sasrec,
    private readonly workers: WorkerHandle[],
  ) {}

  get replicas(): number {
    return this.workers.length;
  }

  static async start(model: Sasrec, replicas: number): Promise<WorkerPoolRunner> {
    const sizes = model.variables().map((v) => v.size);
    const buffer = new SharedArrayBuffer(SharedGradientExchange.byteLength(replicas, sizes));
    const script = workerScript();
    const workers = Array.from({ length: replicas }, (_, rank) => {
      const data: SasrecWorkerData = { numItems: model.numItems, cfg: model.cfg, rank, replicas, buffer, sizes };
      return new WorkerHandle(new Worker(script, { workerData: data }));
    });
    const runner = new WorkerPoolRunner(model, workers);
    try {
      await Promise.all(workers.map((w) => w.ready));
      await runner.pushWeights();
    } catch (err) {
      await runner.dispose();
      throw err;
    }
    return runner;
  }

  async pushWeights(): Promise<void> {
    const weights = this.model.weightArrays();
    await Promise.all(this.workers.map((w) => w.call({ op: 'setWeights', weights })));
  }

  async pullWeights(): Promise<void> {
    const first = this.workers[0] as WorkerHandle;
    this.model.setWeightArrays(await first.call<Float32Array[]>({ op: 'getWeights' }));
  }

  async resetOptimizer(learningRate: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call({ op: 'resetOptimizer', learningRate })));
  }

  async runEpoch(seqs: readonly Int32Array[], spec: EpochSpec, onStep?: (r: StepReport) => void): Promise<number> {
    const { flat, offsets } = flatten(seqs);
    (this.workers[0] as WorkerHandle).onStep = onStep;
    try {
      const losses = await Promise.all(this.workers.map((w) => w.call<number>({ op: 'epoch', flat, offsets, spec })));
      return losses[0] as number;
    } catch (err) {
      // A replica that failed leaves the others waiting at the barrier: stop them all.
      await this.dispose();
      throw err;
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
