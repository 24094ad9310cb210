import { createSession } from '../onnx/ort';
import { SEARCH_DIM, SEARCH_FEATURES } from './features';
import type { SearchScorer } from './ltr';

/**
 * How Search turns candidate feature rows into scores and per-feature parts (for `explain`): the
 * published scorer through onnxruntime, or a scorer in memory (the fallback before any model is
 * published, and the evaluation's cross-validated variants).
 */
export interface BatchScorer {
  readonly version: string;
  score(rows: readonly Float32Array[]): Promise<{ scores: Float32Array; parts: Float32Array[] }>;
}

export function localScorer(scorer: SearchScorer, version: string): BatchScorer {
  return {
    version,
    score: async (rows) => ({
      scores: Float32Array.from(rows, (r) => scorer.score(r)),
      parts: rows.map((r) => {
        const { parts } = scorer.explain(r);
        return Float32Array.from(SEARCH_FEATURES, (f) => parts[f] ?? 0);
      }),
    }),
  };
}

/** The published search scorer (ONNX: features -> score, parts) as an in-process session. */
export async function onnxScorer(
  onnx: Uint8Array,
  version: string,
  opts: Parameters<typeof createSession>[1] = { providers: ['cpu'], intraOpThreads: 1 },
): Promise<BatchScorer & { release(): Promise<void> }> {
  const session = await createSession(onnx, opts);
  const score = async (rows: readonly Float32Array[]) => {
    if (rows.length === 0) return { scores: new Float32Array(0), parts: [] };
    const x = new Float32Array(rows.length * SEARCH_DIM);
    rows.forEach((r, i) => x.set(r, i * SEARCH_DIM));
    const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, SEARCH_DIM] } });
    const parts = out['parts']?.data as Float32Array;
    return {
      scores: Float32Array.from(out['score']?.data as Float32Array),
      parts: rows.map((_, i) => parts.slice(i * SEARCH_DIM, (i + 1) * SEARCH_DIM)),
    };
  };
  await score([new Float32Array(SEARCH_DIM)]);
  return { version, score, release: () => session.release() };
}
