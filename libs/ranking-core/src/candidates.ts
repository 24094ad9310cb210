import type { SearchFeature } from '@aisle/ml';

/** One proposed item and what each candidate source learned about it. */
export interface Candidate {
  itemId: string;
  /** Names of the sources that proposed it, in the order they did. */
  sources: string[];
  /** Sequence retrieval score and 0-based rank. */
  seqScore?: number;
  seqRank?: number;
  /** Session model score and 0-based rank (anonymous sessions). */
  sessionScore?: number;
  sessionRank?: number;
  /** Co-visitation score summed over the recent items, its 0-based rank, and its strongest source item. */
  covisScore: number;
  covisRank?: number;
  covisVia?: string;
  /** Set when a popularity list proposed it: the category ('' = overall). */
  popularIn?: string;
  /** Search: the search model's score, each feature's part of it, and the feature row it scored. */
  search?: { score: number; parts: Partial<Record<SearchFeature, number>>; features: Float32Array };
  /** Lexical (BM25F) score normalized within the query, and the query terms it matched. */
  lexical?: number;
  terms?: string[];
  /** Semantic similarity to the query (or to the seed item). */
  textScore?: number;
}

/**
 * The candidates of one request, in the order they were first proposed. With `only`, sources may
 * enrich those items but propose no others (Rank: the caller's items and nothing else).
 */
export class CandidateSet {
  private readonly byId = new Map<string, Candidate>();

  constructor(private readonly only?: ReadonlySet<string>) {}

  /** Proposes an item (or notes one more source of it); undefined when the set is restricted to others. */
  add(itemId: string, source: string): Candidate | undefined {
    let c = this.byId.get(itemId);
    if (!c) {
      if (this.only && !this.only.has(itemId)) return undefined;
      c = { itemId, sources: [], covisScore: 0 };
      this.byId.set(itemId, c);
    }
    if (!c.sources.includes(source)) c.sources.push(source);
    return c;
  }

  get(itemId: string): Candidate | undefined {
    return this.byId.get(itemId);
  }

  get size(): number {
    return this.byId.size;
  }

  values(): IterableIterator<Candidate> {
    return this.byId.values();
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }
}
