import { CHURN_FEATURES, type ChurnClassifier } from '../models/churn';
import { RANKER_DIM, type Ranker } from '../models/ranker';
import type { WeightMap } from '../models/sasrec';
import type { TextEncoder2T } from '../models/text-encoder';
import { GraphBuilder } from './graph';

function get(w: WeightMap, name: string): { shape: number[]; data: Float32Array } {
  const v = w.get(name);
  if (!v) throw new Error(`missing weight ${name}`);
  return v;
}

/**
 * Text encoder: token_ids int64 [batch, len] (hashed by the shared tokenizer, 0 = padding) ->
 * query_embedding and item_embedding float [batch, dim], both L2-normalized.
 */
export function exportTextEncoder(model: TextEncoder2T, meta: Record<string, string> = {}): Uint8Array {
  const w = model.weights();
  const g = new GraphBuilder('text_encoder');
  const ids = g.input('token_ids', 'int64', ['batch', 'len']);
  const mask = g.op('Cast', [g.op('Greater', [ids, g.int64s([0], [])])], { to: 1 });
  const embedded = g.op('Gather', [g.floats(get(w, 'text.emb').data, get(w, 'text.emb').shape, 'emb'), ids], {
    axis: 0,
  });
  const summed = g.op('ReduceSum', [g.mul(embedded, g.op('Unsqueeze', [mask, g.int64s([2])])), g.int64s([1])], {
    keepdims: 0,
  });
  const count = g.op('Max', [g.op('ReduceSum', [mask, g.int64s([1])], { keepdims: 1 }), g.scalar(1)]);
  const pooled = g.op('Div', [summed, count]);
  for (const tower of ['query', 'item'] as const) {
    const h = g.op('Tanh', [g.dense(pooled, get(w, `text.${tower}.w`), get(w, `text.${tower}.b`))]);
    const norm = g.op('Sqrt', [g.op('ReduceSum', [g.mul(h, h), g.int64s([1])], { keepdims: 1 })]);
    g.output(g.op('Div', [h, g.op('Max', [norm, g.scalar(1e-6)])]), `${tower}_embedding`, 'float32', [
      'batch',
      model.cfg.dim,
    ]);
  }
  return g.build({
    doc: 'Two-tower text encoder over hashed word and character n-grams',
    metadata: {
      model: 'text_encoder',
      dim: String(model.cfg.dim),
      buckets: String(model.cfg.hasher.buckets),
      max_ids: String(model.cfg.hasher.maxIds),
      ...meta,
    },
  });
}

/** Ranker: features float [n, RANKER_DIM] (RANKER_FEATURES order) -> score float [n, 1]. */
export function exportRanker(model: Ranker, meta: Record<string, string> = {}): Uint8Array {
  const w = model.weights();
  const g = new GraphBuilder('ranker');
  const x = g.input('features', 'float32', ['n', RANKER_DIM]);
  let h = g.op('Div', [
    g.op('Sub', [x, g.floats(get(w, 'mean').data, [RANKER_DIM])]),
    g.floats(get(w, 'std').data, [RANKER_DIM]),
  ]);
  const layers = [...w.keys()].filter((k) => /^l\d+\.w$/.test(k)).length;
  for (let i = 0; i < layers; i++) {
    h = g.dense(h, get(w, `l${i}.w`), get(w, `l${i}.b`));
    if (i < layers - 1) h = g.op('Relu', [h]);
  }
  g.output(h, 'score', 'float32', ['n', 1]);
  return g.build({
    doc: 'Learned ranker (MLP, listwise softmax)',
    metadata: { model: 'ranker', features: String(RANKER_DIM), ...meta },
  });
}

/**
 * Churn classifier: features float [n, CHURN_FEATURES] -> risk float [n, 1] and contributions float
 * [n, features] (each feature's share of the log-odds, for top factors).
 */
export function exportChurn(model: ChurnClassifier, meta: Record<string, string> = {}): Uint8Array {
  const w = model.weights();
  const F = CHURN_FEATURES.length;
  const g = new GraphBuilder('churn');
  const x = g.input('features', 'float32', ['n', F]);
  const z = g.op('Div', [g.op('Sub', [x, g.floats(get(w, 'mean').data, [F])]), g.floats(get(w, 'std').data, [F])]);
  const weights = get(w, 'w');
  const contributions = g.mul(z, g.floats(weights.data, [1, F]));
  const logit = g.add(
    g.op('ReduceSum', [contributions, g.int64s([1])], { keepdims: 1 }),
    g.floats(get(w, 'b').data, [1]),
  );
  g.output(g.op('Sigmoid', [logit]), 'risk', 'float32', ['n', 1]);
  g.output(contributions, 'contributions', 'float32', ['n', F]);
  return g.build({
    doc: 'Churn classifier (logistic regression on behaviour features)',
    metadata: { model: 'churn', features: CHURN_FEATURES.join(','), threshold: String(model.threshold), ...meta },
  });
}
