import { analyze, stemPlural, type AnalyzerOptions } from './analyzer';
import type { SearchDoc } from './field-index';

/**
 * Category intent: which category a query wants. An item's category is its catalog category (the leaf of
 * a `A > B > C` path) when the catalog has one, else its product type read from the title: the head noun
 * of the title's first clause (`Concept Housewares WR-44526 Wine Rack, Charcoal Grey` -> `rack`), the
 * way English product titles are written. A query's category distribution comes from the items that
 * answer it best (pseudo-relevance: the categories of the first pass's top items, weighted by score) and,
 * in production, from the categories of the items shoppers clicked for the same query.
 */

export const CLAUSE_END = /\s(?:-|–|—|\||\/\/)\s|[,([:;]|\s(?:with|for|by|in|w\/|featuring|includes?|and)\s/i;
export const TRAILING_NOISE =
  /^(?:\d.*|[a-z]{1,2}|set|pack|pk|count|ct|pcs?|piece|pieces|new|black|white|red|blue|green)$/;

export function categoryLeaf(category: string): string {
  const parts = category.split(/\s*>\s*|\s*\|\s*|\s*\/\s*/).filter((p) => p.trim().length > 0);
  return (parts[parts.length - 1] ?? '').trim().toLowerCase();
}

/** The head noun of a product title's first clause, stemmed; '' when none can be read. */
export function productType(title: string, analyzer: AnalyzerOptions): string {
  const clause = title.split(CLAUSE_END)[0] ?? title;
  const ws = analyze(clause, { ...analyzer, modelNumbers: false, units: false, exact: false }).filter((w) =>
    /^\p{L}+$/u.test(w),
  );
  for (let i = ws.length - 1; i >= 0; i--) {
    const w = ws[i] as string;
    if (!TRAILING_NOISE.test(w)) return stemPlural(w);
  }
  return '';
}

/** The category an item is filed under for intent: its catalog leaf category, else its product type. */
export function intentCategory(doc: SearchDoc, analyzer: AnalyzerOptions): string {
  return doc.category?.trim() ? categoryLeaf(doc.category) : productType(doc.title, analyzer);
}

/** A query's category distribution from scored items: softmax of the scores over the top `k` items. */
export function categoryDistribution(
  categories: readonly string[],
  top: ReadonlyArray<{ doc: number; score: number }>,
  temperature = 1,
): Map<string, number> {
  const out = new Map<string, number>();
  if (top.length === 0) return out;
  const max = Math.max(...top.map((t) => t.score));
  let total = 0;
  for (const { doc, score } of top) {
    const c = categories[doc];
    if (!c) continue;
    const w = Math.exp((score - max) / temperature);
    out.set(c, (out.get(c) ?? 0) + w);
    total += w;
  }
  for (const [c, w] of out) out.set(c, w / (total || 1));
  return out;
}
