import { createSession, RANKER_DIM } from '@aisle/ml';
import type { RankerPort } from '@aisle/ranking-core';

/** The published ranker as an in-process ONNX session ([rows, RANKER_DIM] features -> score per row). */
export async function loadRanker(
  version: string,
  onnx: Uint8Array,
): Promise<RankerPort & { release(): Promise<void> }> {
  const session = await createSession(onnx, { providers: ['cpu'], intraOpThreads: 1 });
  // The pipeline hands its own (pooled) feature matrix; it stays untouched until this resolves.
  const run = async (features: Float32Array, rows: number): Promise<Float32Array> => {
    const data = features.length === rows * RANKER_DIM ? features : features.subarray(0, rows * RANKER_DIM);
    const out = await session.run({ features: { type: 'float32', data, dims: [rows, RANKER_DIM] } });
    return Float32Array.from(out['score']?.data as Float32Array);
  };
  await run(new Float32Array(RANKER_DIM), 1);
  return { version, score: run, release: () => session.release() };
}
