import type { Item } from '@aisle/contracts';
import {
  CoClickSynonyms,
  encoderRetriever,
  exportSearchScorer,
  mulberry32,
  ndcgAt,
  onnxScorer,
  pseudoQueries,
  SEARCH_FEATURES,
  SearchEngine,
  trainSearchScorer,
  type LabelledQuery,
  type SearchDoc,
  type SemanticRetriever,
  type SynonymsJson,
  type TextEncoder2T,
} from '@aisle/ml';
import { searchFeedback, type FeedbackEvent } from './search-feedback';

/**
 * The search model: a linear learning-to-rank scorer over SearchEngine's features, learned from the
 * catalog's pseudo-queries and the shop's search feedback (queries -> clicked, carted, bought items),
 * with the co-click synonyms learned from the same feedback. Published as `search_ranker`: ONNX
 * (features -> score, parts) plus a sidecar with the synonyms ranking's Search expands queries with.
 */
export type SearchItem = Pick<Item, 'itemId' | 'title' | 'category' | 'brand'> & Partial<Pick<Item, 'description'>>;

export interface SearchSidecar {
  features: string[];
  synonyms: SynonymsJson;
  trainedOn: { pseudoQueries: number; feedbackQueries: number };
}

export function searchDocs(items: readonly SearchItem[]): SearchDoc[] {
  return items.map((i) => ({
    id: i.itemId,
    title: i.title,
    description: i.description,
    category: i.category,
    brand: i.brand,
  }));
}

export async function trainSearchModel(
  events: readonly FeedbackEvent[],
  items: readonly SearchItem[],
  encoder: TextEncoder2T | undefined,
  opts: { seed: number; pseudoQueries: number; log: (m: string) => void },
): Promise<{ onnx: Uint8Array; sidecar: SearchSidecar }> {
  const docs = searchDocs(items);
  const engine = new SearchEngine(docs);
  const feedback = searchFeedback(events);
  const pseudo = pseudoQueries(docs, opts.pseudoQueries, mulberry32(opts.seed + 17));
  const semantic = encoder ? encoderRetriever(encoder, docs).retrieve : undefined;
  const scorer = await trainSearchScorer(engine, { pseudo, feedback }, { semantic });
  const titles = new Map(docs.map((d) => [d.id, d.title]));
  const synonyms = new CoClickSynonyms(
    feedback.flatMap((q) => [...q.gains].map(([id, gain]) => ({ query: q.text, title: titles.get(id) ?? '', gain }))),
  );
  opts.log(
    `search ranker: ${pseudo.length} pseudo-queries, ${feedback.length} queries with feedback, ${synonyms.size} query terms with co-click synonyms`,
  );
  return {
    onnx: exportSearchScorer(scorer),
    sidecar: {
      features: [...SEARCH_FEATURES],
      synonyms: synonyms.toJSON(),
      trainedOn: { pseudoQueries: pseudo.length, feedbackQueries: feedback.length },
    },
  };
}

/**
 * NDCG@10 of a search model version on held-out queries: the slice's search feedback when there is
 * enough of it, else pseudo-queries of the catalog (the same for every version, fixed by the seed).
 */
export async function scoreSearchModel(
  artifact: { onnx: Uint8Array; sidecar: Record<string, unknown> },
  sliceEvents: readonly FeedbackEvent[],
  items: readonly SearchItem[],
  opts: { semantic?: SemanticRetriever | undefined; seed: number; minQueries?: number },
): Promise<{ value: number; cases: number }> {
  const docs = searchDocs(items);
  const engine = new SearchEngine(docs);
  let queries: LabelledQuery[] = searchFeedback(sliceEvents);
  if (queries.length < (opts.minQueries ?? 20))
    queries = pseudoQueries(docs, 200, mulberry32(opts.seed + 31)).map((p) => ({
      text: p.text,
      gains: new Map([[docs[p.doc]?.id ?? '', 1]]),
    }));
  const synonymsJson = artifact.sidecar['synonyms'] as SynonymsJson | undefined;
  const synonyms = synonymsJson ? CoClickSynonyms.fromJSON(synonymsJson) : undefined;
  const scorer = await onnxScorer(artifact.onnx, 'held-out');
  const semantic = (await opts.semantic?.(queries.map((q) => q.text))) ?? [];
  let total = 0;
  try {
    for (const [k, q] of queries.entries()) {
      const r = await engine.search(q.text, scorer, { semantic: semantic[k], synonyms, limit: 10 });
      total += ndcgAt(
        r.hits.map((h) => h.itemId),
        q.gains,
        10,
      );
    }
  } finally {
    await scorer.release();
  }
  return { value: total / Math.max(1, queries.length), cases: queries.length };
}
