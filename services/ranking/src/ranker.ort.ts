import { createSession, expectFinite, RANKER_DIM } from '@aisle/ml';
import type { RankerPort } from '@aisle/ranking-core';
import type { ModelArtifact, ServingModel } from '@aisle/runtime';

export type ServingRanker = RankerPort & ServingModel;

/** The published ranker as an in-process ONNX session ([rows, RANKER_DIM] features -> score per row). */
export async function loadRanker(artifact: Pick<ModelArtifact, 'meta' | 'onnx'>): Promise<ServingRanker> {
  const session = await createSession(artifact.onnx, { providers: ['cpu'], intraOpThreads: 1 });
  // The pipeline hands its own (pooled) feature matrix; it stays untouched until this resolves.
  const run = async (features: Float32Array, rows: number): Promise<Float32Array> => {
    const data = features.length === rows * RANKER_DIM ? features : features.subarray(0, rows * RANKER_DIM);
    const out = await session.run({ features: { type: 'float32', data, dims: [rows, RANKER_DIM] } });
    return Float32Array.from(out['score']?.data as Float32Array);
  };
  await run(new Float32Array(RANKER_DIM), 1);
  return { version: artifact.meta.version, score: run, release: () => session.release() };
}

/** A ranker must give one finite score per row, for empty rows and for typical ones alike. */
export async function probeRanker(model: RankerPort): Promise<void> {
  const rows = new Float32Array(2 * RANKER_DIM);
  for (let i = 0; i < RANKER_DIM; i++) rows[RANKER_DIM + i] = ((i * 7) % 11) / 10;
  expectFinite('ranker score', await model.score(rows, 2), { length: 2 });
}
