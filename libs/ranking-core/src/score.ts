import { heuristicScoreAt, RANKER_DIM } from '@aisle/ml';
import type { RequestContext } from './context';
import type { MatrixScorer } from './explain';
import type { RankerPort } from './ports';

export const HEURISTIC_VERSION = 'ranker:heuristic';

/** Scores feature rows with the learned ranker, or the heuristic when none is set (or it fails). */
export async function scoreRows(
  ctx: RequestContext,
  ranker: RankerPort | undefined,
  matrix: Float32Array,
  rows: number,
): Promise<{ scores: Float32Array; version: string; scorer: MatrixScorer }> {
  if (ranker && rows > 0) {
    try {
      const scores = await ranker.score(matrix, rows);
      if (scores.length !== rows) throw new Error(`ranker returned ${scores.length} scores for ${rows} rows`);
      return { scores, version: `ranker:${ranker.version}`, scorer: (m, n) => ranker.score(m, n) };
    } catch (err) {
      ctx.degrade('ranker', err);
    }
  }
  return {
    scores: heuristicScores(matrix, rows),
    version: HEURISTIC_VERSION,
    scorer: async (m, n) => heuristicScores(m, n),
  };
}

function heuristicScores(matrix: Float32Array, rows: number): Float32Array {
  const scores = new Float32Array(rows);
  for (let i = 0; i < rows; i++) scores[i] = heuristicScoreAt(matrix, i * RANKER_DIM);
  return scores;
}

/** Most a known user's ranker score moves a Search score (either way); search scores decide otherwise. */
export const PERSONALIZATION_WEIGHT = 0.1;

/**
 * Search with a known user: the ranker's score, squashed to -1..1 and weighted, added to the search
 * model's score, so personalization reorders only items whose relevance is within 0.2 of each other.
 */
export function personalization(rankerScore: number): number {
  return PERSONALIZATION_WEIGHT * (2 / (1 + Math.exp(-rankerScore)) - 1);
}
