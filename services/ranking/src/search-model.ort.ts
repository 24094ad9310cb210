import { CoClickSynonyms, expectFinite, onnxScorer, SEARCH_DIM, SEARCH_FEATURES, type SynonymsJson } from '@aisle/ml';
import type { SearchModelPort } from '@aisle/ranking-core';
import type { ModelArtifact, ServingModel } from '@aisle/runtime';

export type ServingSearchModel = SearchModelPort & ServingModel;

/** The model was trained on other search features than this build computes. */
export class SearchFeaturesMismatchError extends Error {
  override readonly name = 'SearchFeaturesMismatchError';
}

/**
 * The published `search_ranker` as an in-process ONNX session ([rows, SEARCH_DIM] features -> score and
 * per-feature parts), with the co-click synonyms of its sidecar.
 */
export async function loadSearchModel(
  artifact: Pick<ModelArtifact, 'meta' | 'onnx' | 'sidecar'>,
): Promise<ServingSearchModel> {
  const features = artifact.sidecar['features'];
  if (Array.isArray(features) && features.join(',') !== SEARCH_FEATURES.join(','))
    throw new SearchFeaturesMismatchError(`search_ranker ${artifact.meta.version}: features ${features.join(',')}`);
  const json = artifact.sidecar['synonyms'] as SynonymsJson | undefined;
  const scorer = await onnxScorer(artifact.onnx, artifact.meta.version);
  return { ...scorer, synonyms: json ? CoClickSynonyms.fromJSON(json) : undefined };
}

/** A search model must give one finite score and SEARCH_DIM finite parts per row. */
export async function probeSearchModel(model: SearchModelPort): Promise<void> {
  const typical = Float32Array.from({ length: SEARCH_DIM }, (_, i) => ((i * 7) % 11) / 10);
  const { scores, parts } = await model.score([new Float32Array(SEARCH_DIM), typical]);
  expectFinite('search score', scores, { length: 2 });
  for (const p of parts) expectFinite('search parts', p, { length: SEARCH_DIM });
}
