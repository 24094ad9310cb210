/**
 * The features of one (query, item) pair for learning to rank, in a fixed order: the contract between
 * the trainer (offline, from judgements or clicks) and ranking's Search (online). Computed by
 * `SearchEngine.candidates`, the one place that builds them.
 */
export const SEARCH_FEATURES = [
  'bm25f',
  'bm25f_norm',
  'bm25_title',
  'bm25_description',
  'title_coverage',
  'coverage',
  'all_in_title',
  'title_phrase',
  'rm3_norm',
  'semantic',
  'intent',
  'head_match',
  'title_length_log',
  'no_description',
  'query_terms',
  'popularity_log',
  'ctr',
] as const;

export type SearchFeature = (typeof SEARCH_FEATURES)[number];
export const SEARCH_DIM = SEARCH_FEATURES.length;

export function featureRow(values: Partial<Record<SearchFeature, number>>): Float32Array {
  return Float32Array.from(SEARCH_FEATURES, (f) => {
    const v = values[f] ?? 0;
    return Number.isFinite(v) ? v : 0;
  });
}

export function featureMap(row: Float32Array): Record<SearchFeature, number> {
  return Object.fromEntries(SEARCH_FEATURES.map((f, j) => [f, row[j] as number])) as Record<SearchFeature, number>;
}
