import { words } from './tokenizer';

/** Okapi BM25 over word tokens (k1 = 1.2, b = 0.75), with an inverted index. */
export class Bm25Index {
  private readonly postings = new Map<string, Array<[number, number]>>();
  private readonly lengths: number[] = [];
  private avgLength = 0;

  constructor(
    docs: readonly string[],
    private readonly k1 = 1.2,
    private readonly b = 0.75,
  ) {
    docs.forEach((d, i) => this.add(i, d));
    this.avgLength = this.lengths.reduce((a, x) => a + x, 0) / Math.max(1, this.lengths.length);
  }

  get size(): number {
    return this.lengths.length;
  }

  private add(doc: number, text: string): void {
    const ws = words(text);
    this.lengths[doc] = ws.length;
    const tf = new Map<string, number>();
    for (const w of ws) tf.set(w, (tf.get(w) ?? 0) + 1);
    for (const [w, n] of tf) {
      const list = this.postings.get(w) ?? [];
      list.push([doc, n]);
      this.postings.set(w, list);
    }
  }

  /** Scores every document for a query (0 for documents sharing no term). */
  scoreAll(query: string): Float32Array {
    const scores = new Float32Array(this.lengths.length);
    const N = this.lengths.length;
    for (const w of new Set(words(query))) {
      const list = this.postings.get(w);
      if (!list) continue;
      const idf = Math.log(1 + (N - list.length + 0.5) / (list.length + 0.5));
      for (const [doc, tf] of list) {
        const norm = tf + this.k1 * (1 - this.b + (this.b * (this.lengths[doc] ?? 0)) / this.avgLength);
        scores[doc] = (scores[doc] as number) + (idf * tf * (this.k1 + 1)) / norm;
      }
    }
    return scores;
  }

  /** The terms of `query` found in document `doc` (for explanations such as "matches 'glue'"). */
  matchedTerms(query: string, doc: number): string[] {
    return [...new Set(words(query))].filter((w) => this.postings.get(w)?.some(([d]) => d === doc));
  }
}
