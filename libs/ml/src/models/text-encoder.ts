import { mulberry32, shuffleInPlace } from '../eval/random';
import { tf } from '../nn/backend';
import { gatherRows, matMul, softmaxCrossEntropy } from '../nn/ops';
import { DEFAULT_HASHER, hashBatch, type HasherConfig } from '../text/tokenizer';
import type { WeightMap } from './sasrec';

/**
 * Two-tower text encoder over hashed word and character n-grams (Nigam et al., KDD 2019): a shared
 * embedding table, mean pooling, a tower-specific dense layer with tanh, L2-normalized output. Trained
 * with in-batch softmax over (query, item text) pairs.
 */
export interface TextEncoderConfig {
  dim: number;
  hasher: HasherConfig;
  temperature: number;
  learningRate: number;
  batchSize: number;
  epochs: number;
  seed: number;
}

export const DEFAULT_TEXT_ENCODER: TextEncoderConfig = {
  dim: 64,
  hasher: DEFAULT_HASHER,
  temperature: 0.05,
  learningRate: 3e-3,
  batchSize: 256,
  epochs: 8,
  seed: 1,
};

export type Tower = 'query' | 'item';

export class TextEncoder2T {
  readonly cfg: TextEncoderConfig;
  readonly emb: tf.Variable;
  readonly towers: Record<Tower, { w: tf.Variable; b: tf.Variable }>;

  constructor(cfg: Partial<TextEncoderConfig> = {}) {
    this.cfg = { ...DEFAULT_TEXT_ENCODER, ...cfg, hasher: { ...DEFAULT_TEXT_ENCODER.hasher, ...cfg.hasher } };
    const { dim } = this.cfg;
    let seed = this.cfg.seed * 1000;
    this.emb = tf.variable(
      tf.randomNormal([this.cfg.hasher.buckets + 1, dim], 0, 0.1, 'float32', seed++),
      true,
      'text.emb',
    );
    const tower = (name: Tower) => ({
      w: tf.variable(
        tf.add(tf.eye(dim), tf.randomNormal([dim, dim], 0, 0.05, 'float32', seed++)),
        true,
        `text.${name}.w`,
      ),
      b: tf.variable(tf.zeros([dim]), true, `text.${name}.b`),
    });
    this.towers = { query: tower('query'), item: tower('item') };
  }

  variables(): tf.Variable[] {
    return [this.emb, this.towers.query.w, this.towers.query.b, this.towers.item.w, this.towers.item.b];
  }

  /** L2-normalized embeddings [n, dim] of texts through one tower. */
  encodeTensor(texts: readonly string[], tower: Tower): tf.Tensor2D {
    const { ids, width } = hashBatch(texts, this.cfg.hasher);
    const idT = tf.tensor2d(ids, [texts.length, width], 'int32');
    const mask = tf.cast(tf.greater(idT, 0), 'float32').reshape([texts.length, width, 1]);
    const summed = tf.sum(tf.mul(gatherRows(this.emb as tf.Tensor2D, idT), mask), 1);
    const pooled = tf.div(summed, tf.maximum(tf.sum(mask, 1), 1)) as tf.Tensor2D;
    const t = this.towers[tower];
    const h = tf.tanh(tf.add(matMul(pooled, t.w as tf.Tensor2D), t.b)) as tf.Tensor2D;
    return tf.div(h, tf.maximum(tf.norm(h, 'euclidean', 1, true), 1e-6)) as tf.Tensor2D;
  }

  encode(texts: readonly string[], tower: Tower): Float32Array {
    const out = tf.tidy(() => this.encodeTensor(texts, tower));
    const data = out.dataSync() as Float32Array;
    out.dispose();
    return data;
  }

  /** In-batch softmax: each query against every item text of the batch. Pairs must not repeat items within a batch. */
  async fit(
    pairs: ReadonlyArray<[string, string]>,
    opts: { onEpoch?: (epoch: number, loss: number, seconds: number) => void } = {},
  ): Promise<number[]> {
    const rand = mulberry32(this.cfg.seed);
    const optimizer = tf.train.adam(this.cfg.learningRate);
    const vars = this.variables();
    const losses: number[] = [];
    for (let epoch = 1; epoch <= this.cfg.epochs; epoch++) {
      const t0 = performance.now();
      const order = shuffleInPlace(
        pairs.map((_, i) => i),
        rand,
      );
      let sum = 0;
      let steps = 0;
      for (let start = 0; start + 8 <= order.length; start += this.cfg.batchSize) {
        // Drop repeated item texts inside a batch: they would be false negatives.
        const seen = new Set<string>();
        const batch = order
          .slice(start, start + this.cfg.batchSize)
          .map((i) => pairs[i] as [string, string])
          .filter(([, item]) => (seen.has(item) ? false : (seen.add(item), true)));
        const cost = optimizer.minimize(
          () => {
            const q = this.encodeTensor(
              batch.map((p) => p[0]),
              'query',
            );
            const it = this.encodeTensor(
              batch.map((p) => p[1]),
              'item',
            );
            return softmaxCrossEntropy(
              tf.div(q, this.cfg.temperature) as tf.Tensor2D,
              it,
              Int32Array.from(batch, (_, k) => k),
            );
          },
          true,
          vars,
        );
        sum += (await cost?.data())?.[0] ?? 0;
        cost?.dispose();
        steps++;
      }
      losses.push(sum / Math.max(1, steps));
      opts.onEpoch?.(epoch, sum / Math.max(1, steps), (performance.now() - t0) / 1000);
    }
    optimizer.dispose();
    return losses;
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

/** Cosine similarity search over item embeddings (both L2-normalized). */
export function cosineScores(query: Float32Array, items: Float32Array, dim: number): Float32Array {
  const n = items.length / dim;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (query[j] as number) * (items[i * dim + j] as number);
    out[i] = s;
  }
  return out;
}
