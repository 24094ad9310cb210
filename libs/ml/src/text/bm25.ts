import { words } from './tokenizer';

/** One term's postings: parallel growable arrays; a posting is live while its epoch is its doc's epoch. */
interface Postings {
  docs: Int32Array;
  tfs: Uint16Array;
  epochs: Uint32Array;
  length: number;
  /** Live documents containing the term (the document frequency). */
  df: number;
  /** Postings left behind by replaced or deleted documents, compacted away when they outnumber the live. */
  dead: number;
}

const EMPTY_TERMS = new Int32Array(0);

function grow<T extends Int32Array | Uint16Array | Uint32Array>(a: T, size: number): T {
  const next = new (a.constructor as new (n: number) => T)(size);
  next.set(a);
  return next;
}

/**
 * Okapi BM25 over word tokens (k1 = 1.2, b = 0.75), with an inverted index that is updated in place:
 * `set` adds or replaces one document and `delete` removes one, in time proportional to that document's
 * terms (never a rebuild), so a catalog can change while it serves queries. Documents are numbered by
 * the caller (small integers; reuse freed numbers). Postings are typed arrays; a replaced document's old
 * postings are invalidated by an epoch and compacted lazily.
 */
export class Bm25Index {
  private readonly terms = new Map<string, number>();
  private readonly postings: Postings[] = [];
  private readonly termWords: string[] = [];
  /** Term ids whose last document went away: reused, so that the dictionary stays as big as the live vocabulary. */
  private readonly freeTerms: number[] = [];
  /** Per document: its term ids (for delete and matchedTerms), length in words, epoch. */
  private docTerms: Int32Array[] = [];
  private lengths = new Uint32Array(16);
  private epochs = new Uint32Array(16);
  private live = new Uint8Array(16);
  private count = 0;
  private totalLength = 0;
  private capacity = 0;
  private scratch = new Float64Array(0);

  constructor(
    docs: readonly string[] = [],
    private readonly k1 = 1.2,
    private readonly b = 0.75,
  ) {
    docs.forEach((d, i) => this.set(i, d));
  }

  /** Documents in the index. */
  get size(): number {
    return this.count;
  }

  private ensureDoc(doc: number): void {
    if (!Number.isInteger(doc) || doc < 0) throw new RangeError(`document number must be a non-negative integer`);
    if (doc >= this.lengths.length) {
      const n = Math.max(doc + 1, this.lengths.length * 2);
      this.lengths = grow(this.lengths, n);
      this.epochs = grow(this.epochs, n);
      const live = new Uint8Array(n);
      live.set(this.live);
      this.live = live;
    }
    if (doc >= this.capacity) this.capacity = doc + 1;
  }

  private termId(term: string): number {
    let id = this.terms.get(term);
    if (id === undefined) {
      const empty = { docs: new Int32Array(4), tfs: new Uint16Array(4), epochs: new Uint32Array(4), length: 0 };
      id = this.freeTerms.pop() ?? this.postings.length;
      this.postings[id] = { ...empty, df: 0, dead: 0 };
      this.termWords[id] = term;
      this.terms.set(term, id);
    }
    return id;
  }

  /** Adds document `doc`, or replaces its text. */
  set(doc: number, text: string): void {
    this.ensureDoc(doc);
    this.delete(doc);
    const tf = new Map<string, number>();
    const ws = words(text);
    for (const w of ws) tf.set(w, (tf.get(w) ?? 0) + 1);
    const epoch = this.epochs[doc] as number;
    const ids = new Int32Array(tf.size);
    let k = 0;
    for (const [w, n] of tf) {
      const id = this.termId(w);
      ids[k++] = id;
      const p = this.postings[id] as Postings;
      if (p.length === p.docs.length) {
        const size = p.docs.length * 2;
        p.docs = grow(p.docs, size);
        p.tfs = grow(p.tfs, size);
        p.epochs = grow(p.epochs, size);
      }
      p.docs[p.length] = doc;
      p.tfs[p.length] = Math.min(n, 0xffff);
      p.epochs[p.length] = epoch;
      p.length++;
      p.df++;
    }
    this.docTerms[doc] = ids;
    this.lengths[doc] = ws.length;
    this.live[doc] = 1;
    this.count++;
    this.totalLength += ws.length;
  }

  /** Removes document `doc` (nothing if it is not indexed). */
  delete(doc: number): void {
    if (doc >= this.capacity || !this.live[doc]) return;
    this.live[doc] = 0;
    this.epochs[doc] = ((this.epochs[doc] as number) + 1) >>> 0;
    this.count--;
    this.totalLength -= this.lengths[doc] as number;
    for (const id of this.docTerms[doc] ?? EMPTY_TERMS) {
      const p = this.postings[id] as Postings;
      p.df--;
      p.dead++;
      if (p.df === 0) {
        this.terms.delete(this.termWords[id] as string);
        this.freeTerms.push(id);
        p.length = 0;
        p.dead = 0;
      } else if (p.dead > p.df + 8) this.compact(p);
    }
    this.docTerms[doc] = EMPTY_TERMS;
  }

  private compact(p: Postings): void {
    let w = 0;
    for (let r = 0; r < p.length; r++) {
      const d = p.docs[r] as number;
      if (p.epochs[r] !== this.epochs[d] || !this.live[d]) continue;
      p.docs[w] = d;
      p.tfs[w] = p.tfs[r] as number;
      p.epochs[w] = p.epochs[r] as number;
      w++;
    }
    p.length = w;
    p.dead = 0;
  }

  /** Adds the query's BM25 score of every matching document into `scores`; returns the documents touched. */
  private accumulate(query: string, scores: Float64Array | Float32Array, touched: number[] | undefined): void {
    const N = this.count;
    if (N === 0) return;
    const avg = this.totalLength / N;
    for (const w of new Set(words(query))) {
      const id = this.terms.get(w);
      if (id === undefined) continue;
      const p = this.postings[id] as Postings;
      if (p.df === 0) continue;
      const idf = Math.log(1 + (N - p.df + 0.5) / (p.df + 0.5));
      for (let i = 0; i < p.length; i++) {
        const doc = p.docs[i] as number;
        if (p.epochs[i] !== this.epochs[doc] || !this.live[doc]) continue;
        const tf = p.tfs[i] as number;
        const norm = tf + this.k1 * (1 - this.b + (this.b * (this.lengths[doc] as number)) / avg);
        if (touched && scores[doc] === 0) touched.push(doc);
        scores[doc] = (scores[doc] as number) + (idf * tf * (this.k1 + 1)) / norm;
      }
    }
  }

  /** Scores every document number up to the highest used for a query (0 for documents sharing no term). */
  scoreAll(query: string): Float32Array {
    const scores = new Float32Array(this.capacity);
    this.accumulate(query, scores, undefined);
    return scores;
  }

  /** The `limit` best-scoring documents (score > 0), best first; touches only documents sharing a term. */
  top(query: string, limit: number): Array<{ doc: number; score: number }> {
    if (this.scratch.length < this.capacity) this.scratch = new Float64Array(Math.max(this.capacity, 1024));
    const scores = this.scratch;
    const touched: number[] = [];
    this.accumulate(query, scores, touched);
    const out = touched.map((doc) => ({ doc, score: scores[doc] as number }));
    for (const doc of touched) scores[doc] = 0;
    out.sort((x, y) => y.score - x.score || x.doc - y.doc);
    return out.length > limit ? out.slice(0, limit) : out;
  }

  /** The terms of `query` found in document `doc` (for explanations such as "matches 'glue'"). */
  matchedTerms(query: string, doc: number): string[] {
    const ids = this.docTerms[doc] ?? EMPTY_TERMS;
    return [...new Set(words(query))].filter((w) => {
      const id = this.terms.get(w);
      return id !== undefined && ids.includes(id);
    });
  }
}
