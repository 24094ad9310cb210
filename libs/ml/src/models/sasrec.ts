import { numItems, trainPart, type SequenceDataset } from '../data/sequences';
import { evaluate, type Metrics, type SequenceScorer } from '../eval/evaluate';
import { mulberry32, shuffleInPlace } from '../eval/random';
import { tf } from '../nn/backend';
import { batchMatMul, gatherRows, layerNorm, matMul, softmaxCrossEntropy } from '../nn/ops';
import { WorkerPoolRunner } from './sasrec-parallel';
import { LocalRunner, targetPositions, type EpochRunner } from './sasrec-training';

/** SASRec-style causal self-attention over a user's recent items (Kang & McAuley 2018), pre-LN blocks. */
export interface SasrecConfig {
  dim: number;
  layers: number;
  heads: number;
  maxLen: number;
  /** Hidden width of the feed-forward layer (SASRec: = dim). */
  ffn: number;
  dropout: number;
  /**
   * Full softmax over all items, or sampled softmax over the batch's targets plus N negatives drawn
   * uniformly or in proportion to item frequency (then every candidate's logit is corrected by
   * -log q(item), the log-Q correction, so the sampled loss estimates the full one). Never one negative.
   */
  loss: { kind: 'full' } | { kind: 'sampled'; negatives: number; sampler?: 'uniform' | 'popularity' };
  learningRate: number;
  /** 'linear': decays to 5% of the rate over `epochs` (helps most when epochs are few). */
  schedule: 'constant' | 'linear';
  /** At most this many sequences per batch ... */
  batchSequences: number;
  /** ... and at most this many target positions (bounds the [targets, items] logits matrix). */
  batchTargets: number;
  epochs: number;
  /** Stop after this many epochs without a better validation NDCG@10. */
  patience: number;
  /** Validate on at most this many users each epoch (0 = all). */
  validationUsers: number;
  seed: number;
}

export const SASREC_SIZES: Record<'small' | 'base' | 'large', Partial<SasrecConfig>> = {
  small: { dim: 32, layers: 1, heads: 1, ffn: 32 },
  base: { dim: 64, layers: 2, heads: 2, ffn: 64 },
  large: { dim: 256, layers: 4, heads: 4, ffn: 1024 },
};

export const DEFAULT_SASREC: SasrecConfig = {
  dim: 64,
  layers: 2,
  heads: 2,
  maxLen: 50,
  ffn: 64,
  dropout: 0.3,
  loss: { kind: 'full' },
  learningRate: 1e-3,
  schedule: 'constant',
  batchSequences: 256,
  batchTargets: 3000,
  epochs: 20,
  patience: 3,
  validationUsers: 0,
  seed: 1,
};

interface Block {
  ln1g: tf.Variable;
  ln1b: tf.Variable;
  wq: tf.Variable;
  wk: tf.Variable;
  wv: tf.Variable;
  wo: tf.Variable;
  bq: tf.Variable;
  bk: tf.Variable;
  bv: tf.Variable;
  bo: tf.Variable;
  ln2g: tf.Variable;
  ln2b: tf.Variable;
  w1: tf.Variable;
  b1: tf.Variable;
  w2: tf.Variable;
  b2: tf.Variable;
}

export interface EpochReport {
  epoch: number;
  loss: number;
  seconds: number;
  validation: Metrics;
  best: boolean;
}

export interface StepReport {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
  stepsPerSecond: number;
  etaSeconds: number;
}

/** Named weights, row-major, for export. */
export type WeightMap = Map<string, { shape: number[]; data: Float32Array }>;

export class Sasrec implements SequenceScorer {
  readonly name = 'SASRec';
  readonly cfg: SasrecConfig;
  readonly numItems: number;
  readonly itemEmb: tf.Variable;
  readonly posEmb: tf.Variable;
  readonly blocks: Block[];
  readonly lnfG: tf.Variable;
  readonly lnfB: tf.Variable;

  constructor(numItemsCount: number, cfg: Partial<SasrecConfig> = {}) {
    this.cfg = { ...DEFAULT_SASREC, ...cfg };
    if (this.cfg.dim % this.cfg.heads !== 0)
      throw new Error(`dim ${this.cfg.dim} is not divisible by heads ${this.cfg.heads}`);
    this.numItems = numItemsCount;
    const { dim, ffn } = this.cfg;
    let seed = this.cfg.seed * 1000;
    const normal = (shape: number[], std: number, name: string) =>
      tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed++), true, name);
    const zeros = (shape: number[], name: string) => tf.variable(tf.zeros(shape), true, name);
    const ones = (shape: number[], name: string) => tf.variable(tf.ones(shape), true, name);
    const glorot = (fanIn: number, fanOut: number, name: string) =>
      normal([fanIn, fanOut], Math.sqrt(2 / (fanIn + fanOut)), name);
    this.itemEmb = normal([numItemsCount + 1, dim], 1 / Math.sqrt(dim), 'item_emb');
    this.posEmb = normal([this.cfg.maxLen, dim], 1 / Math.sqrt(dim), 'pos_emb');
    this.blocks = Array.from({ length: this.cfg.layers }, (_, l) => ({
      ln1g: ones([dim], `b${l}.ln1.g`),
      ln1b: zeros([dim], `b${l}.ln1.b`),
      wq: glorot(dim, dim, `b${l}.wq`),
      wk: glorot(dim, dim, `b${l}.wk`),
      wv: glorot(dim, dim, `b${l}.wv`),
      wo: glorot(dim, dim, `b${l}.wo`),
      bq: zeros([dim], `b${l}.bq`),
      bk: zeros([dim], `b${l}.bk`),
      bv: zeros([dim], `b${l}.bv`),
      bo: zeros([dim], `b${l}.bo`),
      ln2g: ones([dim], `b${l}.ln2.g`),
      ln2b: zeros([dim], `b${l}.ln2.b`),
      w1: glorot(dim, ffn, `b${l}.w1`),
      b1: zeros([ffn], `b${l}.b1`),
      w2: glorot(ffn, dim, `b${l}.w2`),
      b2: zeros([dim], `b${l}.b2`),
    }));
    this.lnfG = ones([dim], 'lnf.g');
    this.lnfB = zeros([dim], 'lnf.b');
  }

  variables(): tf.Variable[] {
    return [
      this.itemEmb,
      this.posEmb,
      ...this.blocks.flatMap((b) => Object.values(b) as tf.Variable[]),
      this.lnfG,
      this.lnfB,
    ];
  }

  /** Right-aligned id matrix [B, L] of the last `maxLen` items of each sequence (0 = padding). */
  padBatch(seqs: readonly Int32Array[]): { ids: Int32Array; length: number } {
    const L = Math.max(1, Math.min(this.cfg.maxLen, Math.max(...seqs.map((s) => s.length))));
    const ids = new Int32Array(seqs.length * L);
    seqs.forEach((s, b) => {
      const tail = s.subarray(Math.max(0, s.length - L));
      ids.set(tail, b * L + (L - tail.length));
    });
    return { ids, length: L };
  }

  /** Hidden states [B, L, d] for right-aligned ids. */
  forward(ids: Int32Array, batch: number, L: number, training: boolean): tf.Tensor3D {
    const { dim, heads, maxLen, dropout } = this.cfg;
    const dk = dim / heads;
    const drop = (t: tf.Tensor) => (training && dropout > 0 ? tf.dropout(t, dropout) : t);
    const idT = tf.tensor2d(ids, [batch, L], 'int32');
    const keep = tf.cast(tf.greater(idT, 0), 'float32').reshape([batch, L, 1]);
    const positions = tf.range(maxLen - L, maxLen, 1, 'int32');
    let x = tf.add(
      tf.mul(gatherRows(this.itemEmb as tf.Tensor2D, idT), Math.sqrt(dim)),
      gatherRows(this.posEmb as tf.Tensor2D, positions),
    );
    x = tf.mul(drop(x), keep);
    // Causal mask plus key padding, additive.
    const causal = tf.linalg.bandPart(tf.ones([L, L]), -1, 0);
    const keyKeep = tf.reshape(tf.cast(tf.greater(idT, 0), 'float32'), [batch, 1, 1, L]);
    const mask = tf.mul(tf.sub(1, tf.mul(causal.reshape([1, 1, L, L]), keyKeep)), -1e9);
    for (const blk of this.blocks) {
      const h = layerNorm(x, blk.ln1g as tf.Tensor1D, blk.ln1b as tf.Tensor1D).reshape([batch * L, dim]) as tf.Tensor2D;
      const proj = (w: tf.Variable, b: tf.Variable) =>
        tf.add(matMul(h, w as tf.Tensor2D), b).reshape([batch, L, heads, dk]);
      const q = tf.transpose(proj(blk.wq, blk.bq), [0, 2, 1, 3]);
      const kT = tf.transpose(proj(blk.wk, blk.bk), [0, 2, 3, 1]);
      const v = tf.transpose(proj(blk.wv, blk.bv), [0, 2, 1, 3]);
      const scores = tf.add(tf.div(batchMatMul(q, kT), Math.sqrt(dk)), mask);
      const att = drop(tf.softmax(scores, -1));
      const ctx = tf.transpose(batchMatMul(att, v), [0, 2, 1, 3]).reshape([batch * L, dim]) as tf.Tensor2D;
      const attOut = tf.add(matMul(ctx, blk.wo as tf.Tensor2D), blk.bo).reshape([batch, L, dim]);
      x = tf.add(x, drop(attOut));
      const h2 = layerNorm(x, blk.ln2g as tf.Tensor1D, blk.ln2b as tf.Tensor1D).reshape([
        batch * L,
        dim,
      ]) as tf.Tensor2D;
      const f1 = tf.relu(tf.add(matMul(h2, blk.w1 as tf.Tensor2D), blk.b1)) as tf.Tensor2D;
      const f2 = tf.add(matMul(f1, blk.w2 as tf.Tensor2D), blk.b2).reshape([batch, L, dim]);
      x = tf.mul(tf.add(x, drop(f2)), keep);
    }
    return layerNorm(x, this.lnfG as tf.Tensor1D, this.lnfB as tf.Tensor1D) as tf.Tensor3D;
  }

  /** User representations: the last position's hidden state, [B, d]. */
  encode(histories: readonly Int32Array[]): tf.Tensor2D {
    return tf.tidy(() => {
      const { ids, length } = this.padBatch(histories);
      const h = this.forward(ids, histories.length, length, false);
      return h
        .slice([0, length - 1, 0], [histories.length, 1, this.cfg.dim])
        .reshape([histories.length, this.cfg.dim]) as tf.Tensor2D;
    });
  }

  scoreBatch(histories: readonly Int32Array[]): Float32Array[] {
    const scores = tf.tidy(() => tf.matMul(this.encode(histories), tf.transpose(this.itemEmb as tf.Tensor2D)));
    const flat = scores.dataSync() as Float32Array;
    scores.dispose();
    const width = this.numItems + 1;
    return histories.map((_, b) => flat.subarray(b * width, (b + 1) * width));
  }

  /** Loss of one batch of training sequences (targets = next items at every position). */
  batchLoss(seqs: readonly Int32Array[], rand: () => number): tf.Scalar {
    const inputs = seqs.map((s) => s.subarray(Math.max(0, s.length - 1 - this.cfg.maxLen), s.length - 1));
    const targetsSeqs = seqs.map((s) => s.subarray(Math.max(1, s.length - this.cfg.maxLen), s.length));
    const { ids, length: L } = this.padBatch(inputs);
    const { ids: tgt } = this.padBatch(targetsSeqs);
    const rows: number[] = [];
    const targets: number[] = [];
    for (let k = 0; k < tgt.length; k++) {
      if ((tgt[k] as number) > 0 && (ids[k] as number) > 0) {
        rows.push(k);
        targets.push(tgt[k] as number);
      }
    }
    const hidden = this.forward(ids, seqs.length, L, true).reshape([seqs.length * L, this.cfg.dim]) as tf.Tensor2D;
    const H = gatherRows(hidden, tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
    if (this.cfg.loss.kind === 'full') {
      return softmaxCrossEntropy(H, this.itemEmb as tf.Tensor2D, Int32Array.from(targets), true);
    }
    // Sampled softmax: the batch's targets plus the negatives share one candidate set.
    const popularity = this.cfg.loss.sampler === 'popularity' ? this.sampler : undefined;
    const cand = new Map<number, number>();
    for (const t of targets) if (!cand.has(t)) cand.set(t, cand.size);
    for (let k = 0; k < this.cfg.loss.negatives; k++) {
      const j = popularity ? popularity.draw(rand()) : 1 + Math.floor(rand() * this.numItems);
      if (!cand.has(j)) cand.set(j, cand.size);
    }
    const candIds = [...cand.keys()];
    const W = gatherRows(this.itemEmb as tf.Tensor2D, tf.tensor1d(candIds, 'int32')) as tf.Tensor2D;
    return softmaxCrossEntropy(
      H,
      W,
      Int32Array.from(targets, (t) => cand.get(t) as number),
      false,
      popularity ? Float32Array.from(candIds, (j) => -popularity.logQ(j)) : undefined,
    );
  }

  /** Frequency sampler for `sampler: 'popularity'`, from the sequences about to be trained on. */
  private sampler: PopularitySampler | undefined;
  prepareSampler(seqs: readonly Int32Array[]): void {
    if (this.cfg.loss.kind === 'sampled' && this.cfg.loss.sampler === 'popularity')
      this.sampler = new PopularitySampler(this.numItems, seqs);
  }

  /** Length-bucketed batches bounded by sequences and target positions; order shuffled per epoch. */
  makeBatches(seqs: readonly Int32Array[], rand: () => number): Int32Array[][] {
    const usable = seqs.filter((s) => s.length >= 2);
    const sorted = [...usable].sort((a, b) => a.length - b.length);
    const batches: Int32Array[][] = [];
    let cur: Int32Array[] = [];
    let targets = 0;
    for (const s of sorted) {
      const t = Math.min(this.cfg.maxLen, s.length - 1);
      if (cur.length > 0 && (cur.length >= this.cfg.batchSequences || targets + t > this.cfg.batchTargets)) {
        batches.push(cur);
        cur = [];
        targets = 0;
      }
      cur.push(s);
      targets += t;
    }
    if (cur.length > 0) batches.push(cur);
    return shuffleInPlace(batches, rand);
  }

  /** One array per variable (in `variables()` order), copied out of the backend. */
  weightArrays(): Float32Array[] {
    return this.variables().map((v) => v.dataSync() as Float32Array);
  }

  setWeightArrays(arrays: readonly Float32Array[]): void {
    const vars = this.variables();
    if (arrays.length !== vars.length) throw new Error(`expected ${vars.length} weight arrays, got ${arrays.length}`);
    vars.forEach((v, i) => v.assign(tf.tensor(arrays[i] as Float32Array, v.shape)));
  }

  /** In this thread (`workers` < 2) or on `workers` data-parallel worker threads. */
  private async runner(workers: number | undefined): Promise<EpochRunner> {
    return (workers ?? 0) >= 2 ? WorkerPoolRunner.start(this, workers as number) : new LocalRunner(this);
  }

  /**
   * Training throughput (target positions per second) on a sample of `seqs`, measured with the same
   * runner as `fit`; the weights are restored afterwards.
   */
  async throughput(seqs: readonly Int32Array[], opts: { workers?: number; targets?: number } = {}): Promise<number> {
    const want = opts.targets ?? 4 * this.cfg.batchTargets;
    const sample: Int32Array[] = [];
    let targets = 0;
    for (const s of shuffleInPlace([...seqs], mulberry32(this.cfg.seed + 17))) {
      if (targets >= want) break;
      sample.push(s);
      targets += targetPositions(s, this.cfg.maxLen);
    }
    const snapshot = this.weightArrays();
    const runner = await this.runner(opts.workers);
    try {
      await runner.resetOptimizer(this.cfg.learningRate);
      const spec = (epoch: number) => ({ epoch, seed: this.cfg.seed, schedule: { base: this.cfg.learningRate } });
      await runner.runEpoch(sample.slice(0, Math.max(1, sample.length >> 3)), spec(1)); // warm-up
      const t0 = performance.now();
      await runner.runEpoch(sample, spec(2));
      return targets / Math.max(1e-3, (performance.now() - t0) / 1000);
    } finally {
      await runner.dispose();
      this.setWeightArrays(snapshot);
    }
  }

  /**
   * After `fit`: a few more epochs on every sequence but its last item, so that the validation items
   * (which test inputs end with) are trained on too, at a lower, constant learning rate. Validation
   * is no longer possible afterwards; use it only to report test results, with the epochs chosen by
   * `fit`. Returns the mean loss per epoch.
   */
  async fineTuneWithValidation(
    d: SequenceDataset,
    opts: {
      epochs: number;
      learningRate: number;
      onStep?: (r: StepReport) => void;
      workers?: number;
      /** Only these users (a training subsample); default every user. */
      users?: readonly number[];
    },
  ): Promise<number[]> {
    const source = opts.users ? opts.users.map((u) => d.sequences[u] as Int32Array) : d.sequences;
    const seqs = source.map((s) => (s.length >= 3 ? s.subarray(0, s.length - 1) : s));
    const runner = await this.runner(opts.workers);
    const losses: number[] = [];
    try {
      await runner.resetOptimizer(opts.learningRate);
      for (let e = 1; e <= opts.epochs; e++) {
        const spec = { epoch: e, seed: this.cfg.seed + 101, schedule: { base: opts.learningRate } };
        losses.push(await runner.runEpoch(seqs, spec, opts.onStep));
      }
      await runner.pullWeights();
    } finally {
      await runner.dispose();
    }
    return losses;
  }

  /**
   * Trains on every user's training part, validates each epoch (full ranking, NDCG@10) and keeps the
   * best epoch's weights. With `workers` >= 2 the epochs run data-parallel on worker threads (the same
   * batches and gradients; only dropout masks and float summation order differ).
   */
  async fit(
    d: SequenceDataset,
    opts: {
      onStep?: (r: StepReport) => void;
      onEpoch?: (r: EpochReport) => void;
      validate?: (m: Sasrec) => Promise<Metrics>;
      shouldStop?: () => boolean;
      workers?: number;
      /** Train on these sequences instead of every user's training part (e.g. a subsample). */
      train?: readonly Int32Array[];
    } = {},
  ): Promise<{ best: EpochReport | undefined; history: EpochReport[] }> {
    const train = opts.train ?? d.sequences.map((s) => trainPart(s));
    const vars = this.variables();
    const history: EpochReport[] = [];
    let best: EpochReport | undefined;
    let snapshot: tf.Tensor[] | undefined;
    let sinceBest = 0;
    const validate =
      opts.validate ??
      ((m: Sasrec) => {
        const users = d.sequences.map((_, u) => u).filter((u) => (d.sequences[u]?.length ?? 0) >= 3);
        const subset =
          this.cfg.validationUsers > 0 && users.length > this.cfg.validationUsers
            ? shuffleInPlace([...users], mulberry32(this.cfg.seed + 7)).slice(0, this.cfg.validationUsers)
            : users;
        return evaluate(m, d, { split: 'valid', protocol: { kind: 'full' }, users: subset });
      });
    const schedule = {
      base: this.cfg.learningRate,
      linearOverEpochs: this.cfg.schedule === 'linear' ? this.cfg.epochs : undefined,
    };
    const runner = await this.runner(opts.workers);
    try {
      await runner.resetOptimizer(this.cfg.learningRate);
      for (let epoch = 1; epoch <= this.cfg.epochs; epoch++) {
        const t0 = performance.now();
        const loss = await runner.runEpoch(train, { epoch, seed: this.cfg.seed, schedule }, opts.onStep);
        const seconds = (performance.now() - t0) / 1000;
        await runner.pullWeights();
        const validation = await validate(this);
        const isBest = !best || validation.ndcg10 > best.validation.ndcg10;
        const report: EpochReport = { epoch, loss, seconds, validation, best: isBest };
        history.push(report);
        opts.onEpoch?.(report);
        if (isBest) {
          best = report;
          snapshot?.forEach((t) => t.dispose());
          snapshot = vars.map((v) => tf.clone(v));
          sinceBest = 0;
        } else if (++sinceBest >= this.cfg.patience) break;
        if (opts.shouldStop?.()) break;
      }
    } finally {
      await runner.dispose();
    }
    if (snapshot) {
      vars.forEach((v, i) => v.assign(snapshot?.[i] as tf.Tensor));
      snapshot.forEach((t) => t.dispose());
    }
    return { best, history };
  }

  weights(): WeightMap {
    const out: WeightMap = new Map();
    for (const v of this.variables()) out.set(v.name, { shape: v.shape, data: v.dataSync() as Float32Array });
    return out;
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

export function sasrecFor(d: SequenceDataset, cfg: Partial<SasrecConfig> = {}): Sasrec {
  return new Sasrec(numItems(d), cfg);
}

/** Draws items in proportion to their frequency (add-one smoothed), by binary search on the CDF. */
export class PopularitySampler {
  private readonly cdf: Float64Array;
  private readonly logTotal: number;
  private readonly counts: Float64Array;

  constructor(numItemsCount: number, seqs: readonly Int32Array[]) {
    this.counts = new Float64Array(numItemsCount + 1).fill(1);
    this.counts[0] = 0;
    for (const s of seqs) for (const i of s) this.counts[i] = (this.counts[i] as number) + 1;
    this.cdf = new Float64Array(numItemsCount + 1);
    let acc = 0;
    for (let i = 0; i <= numItemsCount; i++) this.cdf[i] = acc += this.counts[i] as number;
    this.logTotal = Math.log(acc);
  }

  /** Item for a uniform `u` in [0, 1). */
  draw(u: number): number {
    const x = u * (this.cdf[this.cdf.length - 1] as number);
    let lo = 1;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cdf[mid] as number) > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  logQ(item: number): number {
    return Math.log(this.counts[item] as number) - this.logTotal;
  }
}
