import type { SearchEngine } from './engine';
import type { SearchFeature } from './features';
import { fitLinear, type LinearFitOptions, type LinearScorer, type RankingList } from './ltr';
import type { PseudoQuery } from './pseudo-queries';

/** Semantic neighbours (item id -> cosine similarity) for a batch of query texts, from the text encoder. */
export type SemanticRetriever = (texts: readonly string[]) => Promise<Array<ReadonlyMap<string, number>>>;

/** A query with graded answers (item id -> gain): judgements, or clicks and purchases from the clickstream. */
export interface LabelledQuery {
  text: string;
  gains: ReadonlyMap<string, number>;
}

/** Grades of search feedback: a purchase says more than an add-to-cart, which says more than a click. */
export const FEEDBACK_GAIN = { click: 1, add_to_cart: 2, purchase: 3 } as const;

/** Features no offline label set can show (popularity and CTR exist only in production). */
export const OFFLINE_FROZEN: readonly SearchFeature[] = ['popularity_log', 'ctr'];

/**
 * Candidate lists with labels for each query (items the engine does not retrieve cannot be learned).
 * Whole lists: training on only the head of each candidate source (a third of the rows) cost 0.013
 * NDCG@10 on crowdflower-search, as the tail then creeps up at serving time.
 */
export async function rankingLists(
  engine: SearchEngine,
  queries: readonly LabelledQuery[],
  semantic?: SemanticRetriever,
): Promise<RankingList[]> {
  const neighbours = semantic ? await semantic(queries.map((q) => q.text)) : [];
  return queries.map((q, k) => {
    const set = engine.candidates(q.text, { semantic: neighbours[k] });
    return { rows: set.rows, labels: set.docs.map((d) => q.gains.get(engine.ids[d] as string) ?? 0) };
  });
}

export function pseudoLabelled(engine: SearchEngine, pseudo: readonly PseudoQuery[]): LabelledQuery[] {
  return pseudo.map((p) => ({ text: p.text, gains: new Map([[engine.ids[p.doc] as string, 1]]) }));
}

/**
 * Fits the default scorer's weights on labelled lists (pseudo-queries, feedback): one list in five is
 * held out to stop on (its NDCG@10), so the number of epochs is chosen without judgements too.
 */
export function fitDefaultScorer(lists: readonly RankingList[], opts: Partial<LinearFitOptions> = {}): LinearScorer {
  return fitLinear(
    lists.filter((_, k) => k % 5 !== 4),
    { validation: lists.filter((_, k) => k % 5 === 4), ...opts },
  );
}

/**
 * The default search scorer, learned without judgements: a linear ListNet model over the catalog's own
 * pseudo-queries (each with its source item as the answer) and, when the shop has them, queries with the
 * items shoppers clicked or bought after them.
 */
export async function trainSearchScorer(
  engine: SearchEngine,
  data: { pseudo: readonly PseudoQuery[]; feedback?: readonly LabelledQuery[] },
  opts: { semantic?: SemanticRetriever | undefined; fit?: Partial<LinearFitOptions> } = {},
): Promise<LinearScorer> {
  const queries = [...pseudoLabelled(engine, data.pseudo), ...(data.feedback ?? [])];
  const lists = await rankingLists(engine, queries, opts.semantic);
  const frozen = new Set<SearchFeature>(opts.fit?.frozen ?? []);
  if (!opts.semantic) frozen.add('semantic');
  if (!data.feedback?.length) for (const f of OFFLINE_FROZEN) frozen.add(f);
  return fitDefaultScorer(lists, { ...opts.fit, frozen: [...frozen] });
}
