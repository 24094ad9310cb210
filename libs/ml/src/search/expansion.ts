import type { FieldIndex, WeightedTerms } from './field-index';
import { topDocs } from './relevance';

/**
 * Query expansion learned from the catalog itself: RM3 pseudo-relevance feedback (Lavrenko & Croft's
 * relevance model, interpolated with the original query as in Abdul-Jaleel et al., TREC 2004). The top
 * `docs` items of a first pass vote, in proportion to their score, for their terms; the `terms` most
 * likely terms (those in at least two feedback items, and not in most of the catalog) join the query
 * with weight `1 - originalWeight` shared among them.
 */
export interface Rm3Options {
  docs: number;
  terms: number;
  originalWeight: number;
}

export const DEFAULT_RM3: Rm3Options = { docs: 10, terms: 10, originalWeight: 0.7 };

export function rm3(
  index: FieldIndex,
  query: WeightedTerms,
  firstPass: Float32Array,
  opts: Rm3Options = DEFAULT_RM3,
): Map<string, number> {
  const top = topDocs(firstPass, opts.docs).filter((d) => (firstPass[d] as number) > 0);
  if (top.length === 0) return new Map(query);
  const max = firstPass[top[0] as number] as number;
  // Document weights: softmax-like in the first-pass score, so the head of the list dominates.
  const dw = top.map((d) => Math.exp((firstPass[d] as number) - max));
  const dwSum = dw.reduce((a, x) => a + x, 0);
  const rel = new Map<string, number>();
  const seenIn = new Map<string, number>();
  top.forEach((d, k) => {
    const terms = index.docTerms[d] as Map<string, number>;
    let len = 0;
    for (const n of terms.values()) len += n;
    for (const [t, n] of terms) {
      rel.set(t, (rel.get(t) ?? 0) + ((dw[k] as number) / dwSum) * (n / Math.max(1, len)));
      seenIn.set(t, (seenIn.get(t) ?? 0) + 1);
    }
  });
  const common = index.size * 0.1;
  const candidates = [...rel.entries()]
    .filter(([t]) => !query.has(t) && (seenIn.get(t) ?? 0) >= Math.min(2, top.length) && index.df(t) < common)
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.terms);
  const mass = candidates.reduce((a, [, w]) => a + w, 0);
  const qMass = [...query.values()].reduce((a, w) => a + w, 0);
  const out = new Map<string, number>();
  for (const [t, w] of query) out.set(t, (opts.originalWeight * w) / qMass);
  for (const [t, w] of candidates) out.set(t, (out.get(t) ?? 0) + ((1 - opts.originalWeight) * w) / (mass || 1));
  // Rescale so that the original terms keep weight 1 each: scores stay comparable with the first pass.
  const scale = qMass / opts.originalWeight;
  for (const [t, w] of out) out.set(t, w * scale);
  return out;
}
