import { createSession, RANKER_DIM } from '@aisle/ml';
import type { RankerModel } from './ports';

/** The published ranker as an in-process ONNX session (rows of RANKER_FEATURES -> score). */
export async function loadRanker(
  version: string,
  onnx: Uint8Array,
): Promise<RankerModel & { release(): Promise<void> }> {
  const session = await createSession(onnx, { providers: ['cpu'], intraOpThreads: 1 });
  const run = async (rows: readonly Float32Array[]): Promise<Float32Array> => {
    const x = new Float32Array(rows.length * RANKER_DIM);
    rows.forEach((r, i) => x.set(r, i * RANKER_DIM));
    const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, RANKER_DIM] } });
    return Float32Array.from(out['score']?.data as Float32Array);
  };
  await run([new Float32Array(RANKER_DIM)]);
  return { version, score: run, release: () => session.release() };
}
