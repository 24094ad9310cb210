import type { SearchEngine } from './engine';
import { SEARCH_FEATURES, type SearchFeature } from './features';
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

/** Rows kept per training list: the head of each candidate source, where the ranking is decided. */
const TRAINING_HEAD: ReadonlyArray<[SearchFeature, number]> = [
  ['bm25f_norm', 40],
  ['rm3_norm', 20],
  ['semantic', 20],
];

function trainingRows(list: RankingList): RankingList {
  const keep = new Set<number>();
  list.labels.forEach((y, i) => y > 0 && keep.add(i));
  for (const [feature, n] of TRAINING_HEAD) {
    const j = SEARCH_FEATURES.indexOf(feature);
    list.rows
      .map((r, i) => ({ v: r[j] as number, i }))
      .filter((x) => x.v > 0)
      .sort((a, b) => b.v - a.v)
      .slice(0, n)
      .forEach((x) => keep.add(x.i));
  }
  const idx = [...keep].sort((a, b) => a - b);
  return { rows: idx.map((i) => list.rows[i] as Float32Array), labels: idx.map((i) => list.labels[i] as number) };
}

/**
 * Candidate lists with labels for each query (items the engine does not retrieve cannot be learned).
 * `head` keeps only the head of each candidate source plus the labelled items: training on many
 * pseudo-queries costs a third as much, and the tail never reaches a shopper's first page anyway.
 */
export async function rankingLists(
  engine: SearchEngine,
  queries: readonly LabelledQuery[],
  semantic?: SemanticRetriever,
  opts: { head?: boolean } = {},
): Promise<RankingList[]> {
  const neighbours = semantic ? await semantic(queries.map((q) => q.text)) : [];
  return queries.map((q, k) => {
    const set = engine.candidates(q.text, { semantic: neighbours[k] });
    const list = { rows: set.rows, labels: set.docs.map((d) => q.gains.get(engine.ids[d] as string) ?? 0) };
    return opts.head ? trainingRows(list) : list;
  });
}

export function pseudoLabelled(engine: SearchEngine, pseudo: readonly PseudoQuery[]): LabelledQuery[] {
  return pseudo.map((p) => ({ text: p.text, gains: new Map([[engine.ids[p.doc] as string, 1]]) }));
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
  const lists = await rankingLists(engine, queries, opts.semantic, { head: true });
  const frozen = new Set<SearchFeature>(opts.fit?.frozen ?? []);
  if (!opts.semantic) frozen.add('semantic');
  if (!data.feedback?.length) for (const f of OFFLINE_FROZEN) frozen.add(f);
  return fitLinear(lists, { ...opts.fit, frozen: [...frozen] });
}
