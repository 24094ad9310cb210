import { Bm25Index } from '@aisle/ml';

export interface CatalogEntry {
  itemId: string;
  title: string;
  description: string;
  category: string;
  brand: string;
  price: number;
  inStock: boolean;
}

/** The catalog in memory: attributes for filters, rules and reasons, and a BM25 index for search. */
export class Catalog {
  private readonly items = new Map<string, CatalogEntry>();
  private index: { bm25: Bm25Index; ids: string[] } | undefined;

  upsert(entries: Iterable<CatalogEntry>): void {
    for (const e of entries) this.items.set(e.itemId, e);
    this.index = undefined;
  }

  get(itemId: string): CatalogEntry | undefined {
    return this.items.get(itemId);
  }

  get size(): number {
    return this.items.size;
  }

  private bm25(): { bm25: Bm25Index; ids: string[] } {
    if (!this.index) {
      const ids = [...this.items.keys()];
      this.index = { ids, bm25: new Bm25Index(ids.map((id) => textOf(this.items.get(id) as CatalogEntry))) };
    }
    return this.index;
  }

  /** Top lexical matches with scores normalized to 0..1 and the matched terms. */
  search(query: string, limit: number): Array<{ itemId: string; score: number; terms: string[] }> {
    const { bm25, ids } = this.bm25();
    const scores = bm25.scoreAll(query);
    let max = 0;
    for (const s of scores) max = Math.max(max, s);
    if (max <= 0) return [];
    const order = Array.from(scores.keys())
      .filter((i) => (scores[i] as number) > 0)
      .sort((a, b) => (scores[b] as number) - (scores[a] as number))
      .slice(0, limit);
    return order.map((i) => ({
      itemId: ids[i] as string,
      score: (scores[i] as number) / max,
      terms: bm25.matchedTerms(query, i),
    }));
  }
}

export function textOf(e: Pick<CatalogEntry, 'title' | 'category' | 'brand'>): string {
  return `${e.title}. ${e.category}. ${e.brand}.`;
}
