import { mulberry32 } from '../eval/random';
import type { SharedGradientExchange } from '../nn/gradient-exchange';
import { tf } from '../nn/backend';
import type { Sasrec, StepReport } from './sasrec';

/** Learning rate per step: constant, or decaying linearly to 5% over `epochs` epochs. */
export interface RateSchedule {
  base: number;
  linearOverEpochs?: number | undefined;
}

export function rateAt(s: RateSchedule, epoch: number, step: number, steps: number): number {
  if (!s.linearOverEpochs) return s.base;
  return s.base * Math.max(0.05, 1 - ((epoch - 1) * steps + step) / (s.linearOverEpochs * steps));
}

export interface EpochSpec {
  epoch: number;
  /** Seeds the batch plan (identical in every replica) and the sampled negatives (per replica). */
  seed: number;
  schedule: RateSchedule;
}

export class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
}

/** One data-parallel replica: its rank, how many there are, and how gradients are averaged. */
export interface Replica {
  rank: number;
  count: number;
  exchange: SharedGradientExchange;
}

/** Target positions a sequence contributes to a batch (its next-item predictions). */
export function targetPositions(s: Int32Array, maxLen: number): number {
  return Math.max(0, Math.min(maxLen, s.length - 1));
}

/**
 * One pass over `seqs`, returning the mean batch loss. With a replica, every replica builds the same
 * batch plan, takes every `count`-th sequence of each batch (batches are length-sorted, so shares are
 * balanced), and applies the target-weighted mean gradient of all shares: the whole batch's gradient.
 */
export async function trainEpoch(
  model: Sasrec,
  optimizer: tf.Optimizer,
  seqs: readonly Int32Array[],
  spec: EpochSpec,
  onStep?: (r: StepReport) => void,
  replica?: Replica,
): Promise<number> {
  const vars = model.variables();
  model.prepareSampler(seqs);
  const batches = model.makeBatches(seqs, mulberry32(spec.seed * 7919 + spec.epoch));
  const negatives = mulberry32(spec.seed * 104_729 + spec.epoch * 31 + (replica?.rank ?? 0));
  const adam = optimizer as unknown as { learningRate: number };
  const t0 = performance.now();
  let lossSum = 0;
  for (let step = 0; step < batches.length; step++) {
    adam.learningRate = rateAt(spec.schedule, spec.epoch, step, batches.length);
    const batch = batches[step] as Int32Array[];
    const share = replica ? batch.filter((_, k) => k % replica.count === replica.rank) : batch;
    const targets = share.reduce((a, s) => a + targetPositions(s, model.cfg.maxLen), 0);
    let loss: number;
    if (!replica) {
      const cost = optimizer.minimize(() => model.batchLoss(share, negatives), true, vars);
      loss = (await cost?.data())?.[0] ?? Number.NaN;
      cost?.dispose();
    } else {
      let local: Float32Array[] | undefined;
      let localLoss = 0;
      if (targets > 0) {
        const { value, grads } = tf.variableGrads(() => model.batchLoss(share, negatives), vars);
        localLoss = (await value.data())[0] ?? Number.NaN;
        local = vars.map((v) => (grads[v.name] as tf.Tensor).dataSync() as Float32Array);
        value.dispose();
        tf.dispose(Object.values(grads));
      }
      const mean = replica.exchange.allReduce(step, local, targets, localLoss);
      loss = mean.loss;
      if (Number.isFinite(loss)) {
        const named: tf.NamedTensorMap = {};
        vars.forEach((v, i) => (named[v.name] = tf.tensor(mean.grads[i] as Float32Array, v.shape)));
        optimizer.applyGradients(named);
        tf.dispose(Object.values(named));
      }
    }
    // Every replica sees the same mean loss, so all stop here together.
    if (!Number.isFinite(loss))
      throw new TrainingDivergedError(`training diverged at epoch ${spec.epoch}, step ${step} (loss ${loss})`);
    lossSum += loss;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = (step + 1) / elapsed;
    onStep?.({
      epoch: spec.epoch,
      step: step + 1,
      steps: batches.length,
      loss,
      stepsPerSecond: rate,
      etaSeconds: (batches.length - step - 1) / rate,
    });
  }
  return lossSum / Math.max(1, batches.length);
}

/** Where training epochs run: in this thread, or in a pool of data-parallel worker threads. */
export interface EpochRunner {
  readonly replicas: number;
  /** Makes the runner's weights equal to the model's (before training, after restoring a snapshot). */
  pushWeights(): Promise<void>;
  /** Copies the runner's weights into the model (to validate or export it). */
  pullWeights(): Promise<void>;
  /** A fresh optimizer (Adam) for the next phase of training. */
  resetOptimizer(learningRate: number): Promise<void>;
  runEpoch(seqs: readonly Int32Array[], spec: EpochSpec, onStep?: (r: StepReport) => void): Promise<number>;
  dispose(): Promise<void>;
}

/** Trains the model itself, in this thread. */
export class LocalRunner implements EpochRunner {
  readonly replicas = 1;
  private optimizer: tf.Optimizer | undefined;

  constructor(private readonly model: Sasrec) {}

  pushWeights(): Promise<void> {
    return Promise.resolve();
  }

  pullWeights(): Promise<void> {
    return Promise.resolve();
  }

  resetOptimizer(learningRate: number): Promise<void> {
    this.optimizer?.dispose();
    this.optimizer = tf.train.adam(learningRate);
    return Promise.resolve();
  }

  runEpoch(seqs: readonly Int32Array[], spec: EpochSpec, onStep?: (r: StepReport) => void): Promise<number> {
    if (!this.optimizer) this.optimizer = tf.train.adam(spec.schedule.base);
    return trainEpoch(this.model, this.optimizer, seqs, spec, onStep);
  }

  dispose(): Promise<void> {
    this.optimizer?.dispose();
    this.optimizer = undefined;
    return Promise.resolve();
  }
}
