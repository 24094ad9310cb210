import { analyze, type AnalyzerOptions, DEFAULT_ANALYZER } from './analyzer';

/** A catalog item as search sees it. Brand and category are optional (many catalogs have neither). */
export interface SearchDoc {
  id: string;
  title: string;
  description?: string | undefined;
  brand?: string | undefined;
  category?: string | undefined;
}

export const FIELDS = ['title', 'description', 'brand', 'category'] as const;
export type Field = (typeof FIELDS)[number];

/** BM25F parameters: one saturation k1, per-field weight and length normalization b. */
export interface Bm25fParams {
  k1: number;
  weight: Record<Field, number>;
  b: Record<Field, number>;
}

/** Query terms with weights (1 for the user's own terms; expansion terms get less). */
export type WeightedTerms = ReadonlyMap<string, number>;

interface FieldPostings {
  /** term -> flat [doc, tf, doc, tf, ...] */
  postings: Map<string, number[]>;
  lengths: number[];
  total: number;
}

/**
 * An inverted index per field plus document frequencies over whole items, scoring BM25 per field and
 * BM25F (Robertson & Zaragoza: field term frequencies normalized by field length, weighted, summed,
 * then saturated once). Dense score vectors over slots: a query touches only its terms' postings.
 * Items are set and deleted one at a time (a catalog upsert never rebuilds the index); a deleted
 * item's slot is reused.
 */
export class FieldIndex {
  /** Item id per slot ('' for a free slot). */
  readonly ids: string[] = [];
  /** Each slot's terms over all fields with their counts. */
  readonly docTerms: Array<Map<string, number>> = [];
  /** Total term count over the catalog (all fields), for collection statistics (RM3, spelling). */
  readonly termCounts = new Map<string, number>();
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private readonly fields = new Map<Field, FieldPostings>(
    FIELDS.map((f) => [f, { postings: new Map(), lengths: [], total: 0 }]),
  );
  private readonly docFreq = new Map<string, number>();

  constructor(
    docs: readonly SearchDoc[],
    readonly analyzer: AnalyzerOptions = DEFAULT_ANALYZER,
  ) {
    for (const d of docs) this.set(d);
  }

  /** Slot of an item id, if indexed. */
  slot(id: string): number | undefined {
    return this.slots.get(id);
  }

  /** Items indexed now. */
  get count(): number {
    return this.slots.size;
  }

  /** Indexes (or re-indexes) one item; returns its slot and the terms it brought into the catalog. */
  set(doc: SearchDoc): { slot: number; newTerms: string[] } {
    const existing = this.slots.get(doc.id);
    if (existing !== undefined) this.remove(existing);
    const slot = existing ?? this.free.pop() ?? this.ids.length;
    this.ids[slot] = doc.id;
    this.slots.set(doc.id, slot);
    const all = new Map<string, number>();
    const newTerms: string[] = [];
    for (const f of FIELDS) {
      const fp = this.fields.get(f) as FieldPostings;
      const terms = analyze(doc[f] ?? '', this.analyzer);
      fp.lengths[slot] = terms.length;
      fp.total += terms.length;
      const tf = new Map<string, number>();
      for (const t of terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, n] of tf) {
        let list = fp.postings.get(t);
        if (!list) fp.postings.set(t, (list = []));
        list.push(slot, n);
        all.set(t, (all.get(t) ?? 0) + n);
        const before = this.termCounts.get(t) ?? 0;
        if (before === 0) newTerms.push(t);
        this.termCounts.set(t, before + n);
      }
    }
    for (const f of FIELDS) {
      const fp = this.fields.get(f) as FieldPostings;
      for (let s = fp.lengths.length; s < this.ids.length; s++) fp.lengths[s] = 0;
    }
    for (const t of all.keys()) this.docFreq.set(t, (this.docFreq.get(t) ?? 0) + 1);
    this.docTerms[slot] = all;
    return { slot, newTerms };
  }

  /** Removes an item; false if it was not indexed. */
  delete(id: string): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    this.remove(slot);
    this.slots.delete(id);
    this.ids[slot] = '';
    this.docTerms[slot] = new Map();
    this.free.push(slot);
    return true;
  }

  private remove(slot: number): void {
    const all = this.docTerms[slot] ?? new Map<string, number>();
    for (const f of FIELDS) {
      const fp = this.fields.get(f) as FieldPostings;
      fp.total -= fp.lengths[slot] ?? 0;
      fp.lengths[slot] = 0;
      for (const t of all.keys()) {
        const list = fp.postings.get(t);
        if (!list) continue;
        for (let k = 0; k < list.length; k += 2)
          if (list[k] === slot) {
            list.splice(k, 2);
            break;
          }
        if (list.length === 0) fp.postings.delete(t);
      }
    }
    for (const [t, n] of all) {
      const c = (this.termCounts.get(t) ?? 0) - n;
      if (c > 0) this.termCounts.set(t, c);
      else this.termCounts.delete(t);
      const df = (this.docFreq.get(t) ?? 0) - 1;
      if (df > 0) this.docFreq.set(t, df);
      else this.docFreq.delete(t);
    }
  }

  private avgLength(fp: FieldPostings): number {
    return fp.total / Math.max(1, this.count);
  }

  /** Slots (the length of every score vector). */
  get size(): number {
    return this.ids.length;
  }

  /** Items containing the term in any field. */
  df(term: string): number {
    return this.docFreq.get(term) ?? 0;
  }

  idf(term: string): number {
    const n = this.df(term);
    return Math.log(1 + (this.count - n + 0.5) / (n + 0.5));
  }

  /** BM25F scores of every item (0 for items sharing no term with the query). */
  bm25f(query: WeightedTerms, p: Bm25fParams, out = new Float32Array(this.size)): Float32Array {
    const tfw = new Float32Array(this.size);
    for (const [term, qw] of query) {
      if (qw <= 0) continue;
      const touched: number[] = [];
      for (const f of FIELDS) {
        const w = p.weight[f];
        const fp = this.fields.get(f) as FieldPostings;
        const list = fp.postings.get(term);
        if (!list || w <= 0) continue;
        const b = p.b[f];
        const avg = this.avgLength(fp) || 1;
        for (let k = 0; k < list.length; k += 2) {
          const d = list[k] as number;
          if (tfw[d] === 0) touched.push(d);
          tfw[d] = (tfw[d] as number) + (w * (list[k + 1] as number)) / (1 - b + (b * (fp.lengths[d] as number)) / avg);
        }
      }
      const idf = this.idf(term) * qw;
      for (const d of touched) {
        const t = tfw[d] as number;
        out[d] = (out[d] as number) + (idf * t * (p.k1 + 1)) / (t + p.k1);
        tfw[d] = 0;
      }
    }
    return out;
  }

  /** Plain BM25 of one field. */
  bm25(query: WeightedTerms, f: Field, k1 = 1.2, b = 0.75): Float32Array {
    const weight = { title: 0, description: 0, brand: 0, category: 0, [f]: 1 };
    const bs = { title: b, description: b, brand: b, category: b };
    return this.bm25f(query, { k1, weight, b: bs });
  }
}

/** Each distinct query term with weight 1. */
export function termWeights(query: string, analyzer: AnalyzerOptions = DEFAULT_ANALYZER): Map<string, number> {
  return new Map(analyze(query, analyzer).map((t) => [t, 1]));
}
