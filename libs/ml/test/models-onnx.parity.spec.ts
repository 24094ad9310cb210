/** Every exported model: identical random inputs through TF.js and onnxruntime-node agree within 1e-4. */
import {
  CHURN_FEATURES,
  ChurnClassifier,
  createSession,
  DEFAULT_HASHER,
  exportChurn,
  exportRanker,
  exportTextEncoder,
  hashBatch,
  initBackend,
  mulberry32,
  Ranker,
  RANKER_DIM,
  TextEncoder2T,
  tf,
} from '../src';

jest.setTimeout(60_000);
beforeAll(async () => {
  await initBackend({});
});

const rand = mulberry32(42);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

test('text encoder', async () => {
  const model = new TextEncoder2T({ dim: 16, hasher: { buckets: 4096, maxIds: 40 } });
  for (const v of model.variables()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.2, 'float32', 3)));
  const texts = ['Gorilla Glue, Waterproof 8 ounce', 'trash can', 'x', 'Shop-Vac 10-14 Gallon filter bags (2-pack)'];
  const session = await createSession(exportTextEncoder(model));
  const { ids, width } = hashBatch(texts, model.cfg.hasher);
  const out = await session.run({
    token_ids: { type: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [texts.length, width] },
  });
  expect(maxAbsDiff(out['query_embedding']!.data as Float32Array, model.encode(texts, 'query'))).toBeLessThan(1e-4);
  expect(maxAbsDiff(out['item_embedding']!.data as Float32Array, model.encode(texts, 'item'))).toBeLessThan(1e-4);
  expect(DEFAULT_HASHER.buckets).toBe(65536);
  await session.release();
  model.dispose();
});

test('ranker', async () => {
  const model = new Ranker({ hidden: [8, 4] });
  model.mean = Float32Array.from({ length: RANKER_DIM }, () => rand() - 0.5);
  model.std = Float32Array.from({ length: RANKER_DIM }, () => 0.5 + rand());
  const rows = Array.from({ length: 7 }, () => Float32Array.from({ length: RANKER_DIM }, () => rand() * 4 - 2));
  const session = await createSession(exportRanker(model));
  const x = new Float32Array(rows.length * RANKER_DIM);
  rows.forEach((r, i) => x.set(r, i * RANKER_DIM));
  const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, RANKER_DIM] } });
  expect(maxAbsDiff(out['score']!.data as Float32Array, model.score(rows))).toBeLessThan(1e-4);
  await session.release();
  model.dispose();
});

test('churn classifier', async () => {
  const F = CHURN_FEATURES.length;
  const X = Array.from({ length: 200 }, () => Float32Array.from({ length: F }, () => rand() * 3));
  const y = X.map((x) => ((x[0] as number) + rand() > 2 ? 1 : 0));
  const model = new ChurnClassifier({ iterations: 50 });
  await model.fit(X, y);
  const session = await createSession(exportChurn(model));
  const batch = X.slice(0, 9);
  const flat = new Float32Array(batch.length * F);
  batch.forEach((r, i) => flat.set(r, i * F));
  const out = await session.run({ features: { type: 'float32', data: flat, dims: [batch.length, F] } });
  // TF.js forward on the same weights.
  const w = model.weights();
  const expected = tf.tidy(() => {
    const z = tf.div(
      tf.sub(tf.tensor2d(flat, [batch.length, F]), tf.tensor1d(w.get('mean')!.data)),
      tf.tensor1d(w.get('std')!.data),
    );
    return tf.sigmoid(tf.add(tf.matMul(z, tf.tensor2d(w.get('w')!.data, [F, 1])), w.get('b')!.data[0]!)).dataSync();
  });
  expect(maxAbsDiff(out['risk']!.data as Float32Array, expected)).toBeLessThan(1e-4);
  expect(
    maxAbsDiff(
      out['risk']!.data as Float32Array,
      batch.map((x) => model.predict(x)),
    ),
  ).toBeLessThan(1e-4);
  const contributions = out['contributions']!.data as Float32Array;
  const top = model.factors(batch[0]!, 1)[0]!;
  expect(contributions[CHURN_FEATURES.indexOf(top.feature)]).toBeCloseTo(top.contribution, 4);
  await session.release();
});
