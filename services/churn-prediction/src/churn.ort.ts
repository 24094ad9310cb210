import { CHURN_FEATURES, createSession } from '@aisle/ml';
import type { ChurnModel } from './churn.service';

/** The churn model as an onnxruntime session: risk and per-feature contributions for each row. */
export async function ortChurnModel(
  version: string,
  onnx: Uint8Array,
): Promise<ChurnModel & { release(): Promise<void> }> {
  const session = await createSession(onnx, { providers: ['cpu'] });
  const F = CHURN_FEATURES.length;
  return {
    version,
    release: () => session.release(),
    predict: async (rows) => {
      if (rows.length === 0) return [];
      const x = new Float32Array(rows.length * F);
      rows.forEach((r, i) => x.set(r, i * F));
      const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, F] } });
      const risk = out['risk']?.data as Float32Array;
      const contributions = out['contributions']?.data as Float32Array;
      return rows.map((_, i) => ({ risk: risk[i] as number, contributions: contributions.slice(i * F, (i + 1) * F) }));
    },
  };
}
