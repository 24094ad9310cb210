/**
 * The one text of a catalog item that models and indexes see: the trainer trains the text encoder on it,
 * embedding-inference embeds it for semantic retrieval and ranking indexes it for BM25. One function, so
 * that training and serving cannot drift apart. Descriptions are left to BM25F: they would crowd the hashed
 * title n-grams out of the encoder.
 */
export function itemText(item: {
  readonly title: string;
  readonly category?: string | undefined;
  readonly brand?: string | undefined;
}): string {
  return `${item.title}. ${item.category ?? ''}. ${item.brand ?? ''}.`;
}
