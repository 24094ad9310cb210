import { CHURN_FEATURES, createSession, expectFinite } from '@aisle/ml';
import type { ModelArtifact, ServingModel } from '@aisle/runtime';
import type { ChurnModel } from './churn.service';

export type ServingChurnModel = ChurnModel & ServingModel;

/** The churn model as an onnxruntime session: risk and per-feature contributions for each row. */
export async function ortChurnModel(artifact: Pick<ModelArtifact, 'meta' | 'onnx'>): Promise<ServingChurnModel> {
  const session = await createSession(artifact.onnx, { providers: ['cpu'] });
  const F = CHURN_FEATURES.length;
  return {
    version: artifact.meta.version,
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

/** Risks must be probabilities and contributions finite, for an idle user and a busy one alike. */
export async function probeChurnModel(model: ChurnModel): Promise<void> {
  const F = CHURN_FEATURES.length;
  const busy = new Float32Array(F).map((_, i) => 1 + ((i * 5) % 7));
  const out = await model.predict([new Float32Array(F), busy]);
  expectFinite(
    'churn risk',
    out.map((o) => o.risk),
    { length: 2, range: [0, 1] },
  );
  for (const o of out) expectFinite('churn contributions', o.contributions, { length: F });
}
