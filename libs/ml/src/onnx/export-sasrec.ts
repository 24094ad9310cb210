import type { Sasrec } from '../models/sasrec';
import { GraphBuilder } from './graph';

/**
 * The sequence model as one ONNX graph with a dynamic batch: encoder + retrieval.
 * Inputs:  item_ids int64 [batch, len] right-aligned, 0 = padding (only the last maxLen are read);
 *          exclude_ids int64 [batch, n] items never to return (0 = none);
 *          k int64 [1].
 * Outputs: user_embedding float [batch, dim]; scores float [batch, k]; items int64 [batch, k]
 *          (top-k by inner product with the item embedding matrix, computed in the graph so it runs on the
 *          execution provider; excluded items and padding are pushed to -1e9 before TopK).
 */
export function exportSasrec(model: Sasrec, meta: Record<string, string> = {}): Uint8Array {
  const { dim, heads, maxLen } = model.cfg;
  const dk = dim / heads;
  const w = model.weights();
  const W = (name: string) => {
    const v = w.get(name);
    if (!v) throw new Error(`missing weight ${name}`);
    return v;
  };
  const g = new GraphBuilder('sasrec');
  const rawIds = g.input('item_ids', 'int64', ['batch', 'len']);
  // Longer histories keep their last maxLen items, as in training.
  const ids = g.op('Slice', [rawIds, g.int64s([-maxLen]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([1])]);
  const exclude = g.input('exclude_ids', 'int64', ['batch', 'n_exclude']);
  const k = g.input('k', 'int64', [1]);

  const itemEmb = W('item_emb');
  const E = g.floats(itemEmb.data, itemEmb.shape, 'item_emb');
  const L = g.op('Gather', [g.op('Shape', [ids]), g.int64s([1], [])], { axis: 0 });
  const start = g.op('Sub', [g.int64s([maxLen], []), L]);
  const positions = g.op('Range', [start, g.int64s([maxLen], []), g.int64s([1], [])]);
  const pos = g.op('Gather', [g.floats(W('pos_emb').data, W('pos_emb').shape, 'pos_emb'), positions], { axis: 0 });
  const keepBool = g.op('Greater', [ids, g.int64s([0], [])]);
  const keepF = g.op('Cast', [keepBool], { to: 1 });
  const keep = g.op('Unsqueeze', [keepF, g.int64s([2])]);
  let x = g.add(g.mul(g.op('Gather', [E, ids], { axis: 0 }), g.scalar(Math.sqrt(dim))), pos);
  x = g.mul(x, keep);

  // Additive mask [B, 1, L, L]: causal and key padding.
  const LL = g.op('Concat', [g.op('Unsqueeze', [L, g.int64s([0])]), g.op('Unsqueeze', [L, g.int64s([0])])], {
    axis: 0,
  });
  const ones = g.op('ConstantOfShape', [LL], { value: { tensor: { dataType: 1, dims: [1], floatData: [1] } } });
  const causal = g.op('Trilu', [ones], { upper: 0 });
  const keyKeep = g.op('Unsqueeze', [keepF, g.int64s([1, 2])]);
  const allowed = g.mul(g.op('Unsqueeze', [causal, g.int64s([0, 1])]), keyKeep);
  const mask = g.mul(g.op('Sub', [g.scalar(1), allowed]), g.scalar(-1e9));

  model.blocks.forEach((_, l) => {
    const p = (n: string) => W(`b${l}.${n}`);
    const h = g.layerNorm(x, p('ln1.g'), p('ln1.b'), 1e-6);
    const heads4 = (t: string) => g.op('Reshape', [t, g.int64s([0, 0, heads, dk])]);
    const q = g.op('Transpose', [heads4(g.dense(h, p('wq'), p('bq')))], { perm: [0, 2, 1, 3] });
    const kT = g.op('Transpose', [heads4(g.dense(h, p('wk'), p('bk')))], { perm: [0, 2, 3, 1] });
    const v = g.op('Transpose', [heads4(g.dense(h, p('wv'), p('bv')))], { perm: [0, 2, 1, 3] });
    const scores = g.add(g.mul(g.matmul(q, kT), g.scalar(1 / Math.sqrt(dk))), mask);
    const att = g.op('Softmax', [scores], { axis: -1 });
    const ctx = g.op('Reshape', [g.op('Transpose', [g.matmul(att, v)], { perm: [0, 2, 1, 3] }), g.int64s([0, 0, dim])]);
    x = g.add(x, g.dense(ctx, p('wo'), p('bo')));
    const h2 = g.layerNorm(x, p('ln2.g'), p('ln2.b'), 1e-6);
    const f = g.dense(g.op('Relu', [g.dense(h2, p('w1'), p('b1'))]), p('w2'), p('b2'));
    x = g.mul(g.add(x, f), keep);
  });
  x = g.layerNorm(x, W('lnf.g'), W('lnf.b'), 1e-6);
  const last = g.op('Sub', [L, g.int64s([1], [])]);
  const user = g.op('Gather', [x, last], { axis: 1 });
  g.output(user, 'user_embedding', 'float32', ['batch', dim]);

  // Retrieval: inner product with every item, exclusions, top-k.
  const [rows] = itemEmb.shape as [number, number];
  const transposed = new Float32Array(itemEmb.data.length);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < dim; j++) transposed[j * rows + i] = itemEmb.data[i * dim + j] as number;
  let all = g.matmul(user, g.floats(transposed, [dim, rows], 'item_emb_t'));
  const pad = new Float32Array(rows);
  pad[0] = -1e9;
  all = g.add(all, g.floats(pad, [1, rows], 'padding_mask'));
  const updates = g.add(g.mul(g.op('Cast', [exclude], { to: 1 }), g.scalar(0)), g.scalar(-1e9));
  const excluded = g.op('ScatterElements', [g.mul(all, g.scalar(0)), exclude, updates], { axis: 1 });
  const [topScores, topItems] = g.opMulti('TopK', [g.add(all, excluded), k], 2, {
    axis: -1,
    largest: 1,
    sorted: 1,
  }) as [string, string];
  g.output(topScores, 'scores', 'float32', ['batch', 'k']);
  g.output(topItems, 'items', 'int64', ['batch', 'k']);
  return g.build({
    doc: 'SASRec sequence encoder with top-k retrieval',
    metadata: {
      model: 'sasrec',
      dim: String(dim),
      max_len: String(maxLen),
      num_items: String(model.numItems),
      ...meta,
    },
  });
}
