/** The exported search scorer gives the TypeScript scorer's score and explanation parts within 1e-4. */
import { createSession, exportSearchScorer, LinearScorer, mulberry32, SEARCH_DIM, SEARCH_FEATURES } from '../src';

test('search scorer: ONNX score and parts equal LinearScorer.score and explain', async () => {
  const rand = mulberry32(7);
  const scorer = new LinearScorer(
    Float64Array.from({ length: SEARCH_DIM }, () => rand() * 2 - 1),
    0.3,
    Float64Array.from({ length: SEARCH_DIM }, () => rand()),
    Float64Array.from({ length: SEARCH_DIM }, () => 0.2 + rand()),
  );
  const rows = Array.from({ length: 9 }, () => Float32Array.from({ length: SEARCH_DIM }, () => rand() * 5));
  const session = await createSession(exportSearchScorer(scorer));
  const x = new Float32Array(rows.length * SEARCH_DIM);
  rows.forEach((r, i) => x.set(r, i * SEARCH_DIM));
  const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, SEARCH_DIM] } });
  const score = out['score']?.data as Float32Array;
  const parts = out['parts']?.data as Float32Array;
  rows.forEach((r, i) => {
    expect(Math.abs((score[i] as number) - scorer.score(r))).toBeLessThan(1e-4);
    const explained = scorer.explain(r).parts;
    SEARCH_FEATURES.forEach((f, j) =>
      expect(Math.abs((parts[i * SEARCH_DIM + j] as number) - (explained[f] ?? 0))).toBeLessThan(1e-4),
    );
  });
  await session.release();
});
