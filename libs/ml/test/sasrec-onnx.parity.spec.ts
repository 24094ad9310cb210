import { createSession, exportSasrec, initBackend, Sasrec, tf } from '../src';

jest.setTimeout(60_000);

test('SASRec: TF.js and onnxruntime agree within 1e-4, and ONNX top-k honours exclusions', async () => {
  await initBackend({});
  const numItems = 57;
  const model = new Sasrec(numItems, { dim: 16, heads: 2, layers: 2, ffn: 24, maxLen: 8, seed: 3 });
  // Perturb every weight so layer-norm gains and biases are not trivial.
  for (const v of model.variables()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 9)));
  const histories = [
    Int32Array.from([3]),
    Int32Array.from([5, 9, 12]),
    Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
    Int32Array.from([57, 40]),
  ];
  const expected = model.encode(histories);
  const expectedData = expected.dataSync();
  const expectedScores = tf.matMul(expected, tf.transpose(model.itemEmb)).dataSync();
  expected.dispose();

  const session = await createSession(exportSasrec(model));
  const { ids, length } = model.padBatch(histories);
  const exclude = [
    [3, 0],
    [5, 9],
    [10, 9],
    [57, 40],
  ];
  const out = await session.run({
    item_ids: { type: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [histories.length, length] },
    exclude_ids: { type: 'int64', data: BigInt64Array.from(exclude.flat(), BigInt), dims: [4, 2] },
    k: { type: 'int64', data: BigInt64Array.from([5n]), dims: [1] },
  });
  const user = out['user_embedding']!.data as Float32Array;
  expect(user.length).toBe(expectedData.length);
  let maxDiff = 0;
  user.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - (expectedData[i] as number)))));
  expect(maxDiff).toBeLessThan(1e-4);

  const items = Array.from(out['items']!.data as BigInt64Array, Number);
  const scores = out['scores']!.data as Float32Array;
  histories.forEach((_, b) => {
    const row = Array.from({ length: numItems + 1 }, (_, i) => ({
      i,
      s: expectedScores[b * (numItems + 1) + i] as number,
    }));
    const banned = new Set([0, ...(exclude[b] as number[])]);
    const top = row
      .filter((r) => !banned.has(r.i))
      .sort((a, c) => c.s - a.s)
      .slice(0, 5);
    expect(items.slice(b * 5, b * 5 + 5)).toEqual(top.map((t) => t.i));
    top.forEach((t, j) => expect(Math.abs((scores[b * 5 + j] as number) - t.s)).toBeLessThan(1e-4));
  });
  // Histories longer than maxLen: the graph reads the last maxLen items, like encode().
  const long = Int32Array.from({ length: 13 }, (_, i) => i + 1);
  const longOut = await session.run({
    item_ids: { type: 'int64', data: BigInt64Array.from(long, BigInt), dims: [1, 13] },
    exclude_ids: { type: 'int64', data: BigInt64Array.from([0n]), dims: [1, 1] },
    k: { type: 'int64', data: BigInt64Array.from([3n]), dims: [1] },
  });
  const enc = model.encode([long]).dataSync();
  const got = longOut['user_embedding']!.data as Float32Array;
  expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - (enc[i] as number))))).toBeLessThan(1e-4);
  await session.release();
  model.dispose();
});
