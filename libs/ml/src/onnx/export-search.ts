import { SEARCH_DIM, SEARCH_FEATURES } from '../search/features';
import type { LinearScorer } from '../search/ltr';
import { GraphBuilder } from './graph';

/**
 * Search scorer: features float [n, SEARCH_FEATURES] -> score float [n, 1] and parts float [n, F]
 * (each feature's contribution, for `explain`), with score = sum(parts) + bias, exactly as
 * `LinearScorer.explain` splits it.
 */
export function exportSearchScorer(scorer: LinearScorer, meta: Record<string, string> = {}): Uint8Array {
  const probe = new Float32Array(SEARCH_DIM);
  const { bias } = scorer.explain(probe);
  const raw = Float32Array.from(SEARCH_FEATURES, (_, j) => (scorer.weights[j] as number) / (scorer.std[j] as number));
  const g = new GraphBuilder('search_ranker');
  const x = g.input('features', 'float32', ['n', SEARCH_DIM]);
  const parts = g.mul(x, g.floats(raw, [1, SEARCH_DIM]));
  const score = g.add(g.op('ReduceSum', [parts, g.int64s([1])], { keepdims: 1 }), g.floats([bias], [1]));
  g.output(score, 'score', 'float32', ['n', 1]);
  g.output(parts, 'parts', 'float32', ['n', SEARCH_DIM]);
  return g.build({
    doc: 'Search scorer (linear learning to rank over lexical, semantic, intent and popularity features)',
    metadata: { model: 'search_ranker', features: SEARCH_FEATURES.join(','), ...meta },
  });
}
