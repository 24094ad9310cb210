import type { Item } from '@aisle/contracts';
import { Bm25Index, itemText } from '@aisle/ml';
import type { CatalogPort, LexicalMatch, LexicalSearchPort, RankingItem } from './ports';

export interface CatalogLimits {
  /** Most items kept (per tenant: one catalog serves one tenant); further new items are refused. */
  maxItems: number;
  /** Titles longer than this are cut (reasons quote titles; BM25 indexes them). */
  maxTitleLength: number;
  maxCategoryLength: number;
  maxBrandLength: number;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = {
  maxItems: 200_000,
  maxTitleLength: 512,
  maxCategoryLength: 512,
  maxBrandLength: 128,
};

/** What an upsert carries; anything else the producer sent (descriptions, attributes) is not kept. */
export type CatalogUpsert = Pick<Item, 'itemId' | 'title' | 'category' | 'brand' | 'price' | 'inStock'>;

export interface UpsertResult {
  added: number;
  updated: number;
  /** New items refused because the catalog is at `maxItems`. */
  refused: number;
}

/**
 * The catalog as ranking needs it, in memory: only the fields filters, rules, features and reasons
 * read (no descriptions or attributes), with categories and brands shared between items, at most
 * `maxItems` items, and a BM25 index kept up to date item by item (an upsert re-indexes that item only).
 */
export class Catalog implements CatalogPort, LexicalSearchPort {
  private readonly items = new Map<string, { item: RankingItem; doc: number }>();
  private readonly docs: string[] = [];
  private readonly freeDocs: number[] = [];
  private readonly strings = new Map<string, string>();
  private readonly bm25 = new Bm25Index();
  readonly limits: CatalogLimits;

  constructor(limits: Partial<CatalogLimits> = {}) {
    this.limits = { ...DEFAULT_CATALOG_LIMITS, ...limits };
  }

  /** One copy of each category and brand string, however many items share it. */
  private shared(s: string): string {
    let v = this.strings.get(s);
    if (v === undefined) {
      v = s;
      // Bounded like the items: a producer sending a new brand per item cannot grow this past them.
      if (this.strings.size < 2 * this.limits.maxItems) this.strings.set(s, s);
    }
    return v;
  }

  upsert(entries: Iterable<CatalogUpsert>): UpsertResult {
    const r: UpsertResult = { added: 0, updated: 0, refused: 0 };
    const { maxTitleLength, maxCategoryLength, maxBrandLength } = this.limits;
    for (const e of entries) {
      const item: RankingItem = {
        itemId: e.itemId,
        title: e.title.length > maxTitleLength ? e.title.slice(0, maxTitleLength) : e.title,
        category: this.shared(e.category.slice(0, maxCategoryLength)),
        brand: this.shared(e.brand.slice(0, maxBrandLength)),
        price: Number.isFinite(e.price) ? e.price : 0,
        inStock: e.inStock,
      };
      const existing = this.items.get(e.itemId);
      if (existing) {
        const textChanged =
          existing.item.title !== item.title ||
          existing.item.category !== item.category ||
          existing.item.brand !== item.brand;
        existing.item = item;
        if (textChanged) this.bm25.set(existing.doc, itemText(item));
        r.updated++;
        continue;
      }
      if (this.items.size >= this.limits.maxItems) {
        r.refused++;
        continue;
      }
      const doc = this.freeDocs.pop() ?? this.docs.length;
      this.docs[doc] = e.itemId;
      this.items.set(e.itemId, { item, doc });
      this.bm25.set(doc, itemText(item));
      r.added++;
    }
    return r;
  }

  remove(itemId: string): boolean {
    const e = this.items.get(itemId);
    if (!e) return false;
    this.items.delete(itemId);
    this.bm25.delete(e.doc);
    this.docs[e.doc] = '';
    this.freeDocs.push(e.doc);
    return true;
  }

  get(itemId: string): RankingItem | undefined {
    return this.items.get(itemId)?.item;
  }

  get size(): number {
    return this.items.size;
  }

  /** Top BM25 matches over the item texts, scores normalized to 0..1, with the matched terms. */
  search(query: string, limit: number): LexicalMatch[] {
    const top = this.bm25.top(query, limit);
    const max = top[0]?.score ?? 0;
    if (max <= 0) return [];
    return top.map(({ doc, score }) => ({
      itemId: this.docs[doc] as string,
      score: score / max,
      terms: this.bm25.matchedTerms(query, doc),
    }));
  }
}
