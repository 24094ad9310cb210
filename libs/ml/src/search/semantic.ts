import { itemText } from '../text/item-text';
import { mulberry32 } from '../eval/random';
import { topKInnerProduct } from '../eval/topk';
import type { TextEncoder2T } from '../models/text-encoder';
import type { SearchDoc } from './field-index';
import { pseudoQueries } from './pseudo-queries';
import type { LabelledQuery, SemanticRetriever } from './train';

/** Semantic neighbours per query, as embedding-inference's Retrieve returns them (top `k` by cosine). */
export const SEMANTIC_NEIGHBOURS = 100;

/**
 * Training pairs for the text encoder: the catalog's pseudo-queries (`perItem` per item on average, at
 * most `maxPseudo` in all: training time grows with them, quality barely past ~30k on crowdflower-search)
 * and, in production, (query, chosen item) pairs from the clickstream.
 */
export function encoderPairs(
  docs: readonly SearchDoc[],
  opts: { perItem: number; seed: number; maxPseudo?: number; feedback?: readonly LabelledQuery[] },
): Array<[string, string]> {
  const byId = new Map(docs.map((d) => [d.id, d]));
  const count = Math.min(Math.round(docs.length * opts.perItem), opts.maxPseudo ?? 40_000);
  const pairs = pseudoQueries(docs, count, mulberry32(opts.seed)).map((p): [string, string] => [
    p.text,
    itemText(docs[p.doc] as SearchDoc),
  ]);
  for (const q of opts.feedback ?? [])
    for (const [id, gain] of q.gains) {
      const d = byId.get(id);
      if (d && gain > 0) pairs.push([q.text, itemText(d)]);
    }
  return pairs;
}

/** A retriever over the catalog with an in-process (TF.js) encoder, for training and evaluation. */
export function encoderRetriever(
  model: TextEncoder2T,
  docs: readonly SearchDoc[],
  k = SEMANTIC_NEIGHBOURS,
): { retrieve: SemanticRetriever; itemEmbeddings: Float32Array } {
  const dim = model.cfg.dim;
  const emb = new Float32Array(docs.length * dim);
  for (let s = 0; s < docs.length; s += 512)
    emb.set(model.encode(docs.slice(s, s + 512).map(itemText), 'item'), s * dim);
  const retrieve: SemanticRetriever = async (texts) => {
    const out: Array<ReadonlyMap<string, number>> = [];
    for (let s = 0; s < texts.length; s += 512) {
      const q = model.encode(texts.slice(s, s + 512), 'query');
      for (let j = 0; j < q.length / dim; j++)
        out.push(
          new Map(
            topKInnerProduct(emb, dim, q.subarray(j * dim, (j + 1) * dim), k).map((t) => [
              (docs[t.index] as SearchDoc).id,
              t.score,
            ]),
          ),
        );
    }
    return out;
  };
  return { retrieve, itemEmbeddings: emb };
}
