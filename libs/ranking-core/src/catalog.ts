import type { Item } from '@aisle/contracts';
import { SearchEngine, type SearchEngineConfig } from '@aisle/ml';
import type { CatalogPort, RankingItem } from './ports';

export interface CatalogLimits {
  /** Most items kept (per tenant: one catalog serves one tenant); further new items are refused. */
  maxItems: number;
  /** Titles longer than this are cut (reasons quote titles; BM25 indexes them). */
  maxTitleLength: number;
  maxCategoryLength: number;
  maxBrandLength: number;
  /** Descriptions are indexed for Search (not kept) up to this length. */
  maxDescriptionLength: number;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = {
  maxItems: 200_000,
  maxTitleLength: 512,
  maxCategoryLength: 512,
  maxBrandLength: 128,
  maxDescriptionLength: 4096,
};

/** What an upsert carries; anything else the producer sent (attributes) is not kept. */
export type CatalogUpsert = Pick<Item, 'itemId' | 'title' | 'category' | 'brand' | 'price' | 'inStock'> &
  /** Indexed by Search, not kept. */
  Partial<Pick<Item, 'description'>>;

export interface UpsertResult {
  added: number;
  updated: number;
  /** New items refused because the catalog is at `maxItems`. */
  refused: number;
}

/**
 * The catalog as ranking needs it, in memory: only the fields filters, rules, features and reasons
 * read (no descriptions or attributes), with categories and brands shared between items, at most
 * `maxItems` items, and the search engine (libs/ml `SearchEngine`: fields, spelling vocabulary, intent)
 * kept up to date item by item: an upsert re-indexes that item only (its description too, which is
 * indexed but not kept).
 */
export class Catalog implements CatalogPort {
  private readonly items = new Map<string, RankingItem>();
  private readonly strings = new Map<string, string>();
  readonly limits: CatalogLimits;
  /** What ranking's Search and `aisle eval --model search` query. */
  readonly engine: SearchEngine;

  constructor(limits: Partial<CatalogLimits> = {}, search: Partial<SearchEngineConfig> = {}) {
    this.limits = { ...DEFAULT_CATALOG_LIMITS, ...limits };
    this.engine = new SearchEngine([], search);
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
    const { maxTitleLength, maxCategoryLength, maxBrandLength, maxDescriptionLength } = this.limits;
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
      if (!existing && this.items.size >= this.limits.maxItems) {
        r.refused++;
        continue;
      }
      this.items.set(e.itemId, item);
      // A price or stock update that carries no description leaves the indexed text as it was.
      const textChanged =
        !existing ||
        e.description !== undefined ||
        existing.title !== item.title ||
        existing.category !== item.category ||
        existing.brand !== item.brand;
      if (textChanged)
        this.engine.upsert([
          {
            id: item.itemId,
            title: item.title,
            description: e.description?.slice(0, maxDescriptionLength),
            brand: item.brand,
            category: item.category,
          },
        ]);
      if (existing) r.updated++;
      else r.added++;
    }
    return r;
  }

  remove(itemId: string): boolean {
    if (!this.items.delete(itemId)) return false;
    this.engine.delete([itemId]);
    return true;
  }

  get(itemId: string): RankingItem | undefined {
    return this.items.get(itemId);
  }

  get size(): number {
    return this.items.size;
  }
}
