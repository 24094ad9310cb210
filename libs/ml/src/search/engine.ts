import { analyze, DEFAULT_ANALYZER, type AnalyzerOptions } from './analyzer';
import { DEFAULT_RM3, rm3, type Rm3Options } from './expansion';
import { featureRow, SEARCH_FEATURES, type SearchFeature } from './features';
import { type Bm25fParams, FieldIndex, type SearchDoc } from './field-index';
import { categoryDistribution, intentCategory, productType } from './intent';
import { topDocs } from './relevance';
import type { BatchScorer } from './scoring';
import { type Correction, SpellingCorrector } from './spelling';
import { type CoClickSynonyms, withRelated } from './synonyms';

/**
 * Search over a catalog: query understanding (analysis, spelling from the catalog vocabulary, RM3
 * expansion, category intent), candidate retrieval (BM25F, expanded BM25F, and semantic neighbours
 * given by the caller) and the feature rows a scorer ranks. The evaluation and ranking's Search both
 * call this class, so what is measured is what is served.
 */
export interface SearchEngineConfig {
  analyzer: AnalyzerOptions;
  bm25f: Bm25fParams;
  spelling: boolean;
  /** Pseudo-relevance feedback; undefined turns it off. */
  rm3: Rm3Options | undefined;
  /** Category intent from the first pass's top items; 0 turns it off. */
  intentDocs: number;
  /** Lexical candidates per query (BM25F top n, plus the expanded query's top n / 2). */
  candidates: number;
}

export const DEFAULT_BM25F: Bm25fParams = {
  k1: 1.2,
  weight: { title: 3, description: 1, brand: 2, category: 1 },
  b: { title: 0.75, description: 0.75, brand: 0.75, category: 0.75 },
};

export const DEFAULT_SEARCH_CONFIG: SearchEngineConfig = {
  analyzer: DEFAULT_ANALYZER,
  bm25f: DEFAULT_BM25F,
  spelling: true,
  rm3: DEFAULT_RM3,
  intentDocs: 20,
  candidates: 200,
};

/** What is known about an item beyond its text (production: from the feature service). */
export interface ItemSignals {
  popularity?: number | undefined;
  ctr?: number | undefined;
}

export interface QueryUnderstanding {
  query: string;
  /** Analyzed query terms after spelling correction, weight 1 each. */
  terms: Map<string, number>;
  corrections: Correction[];
  /** The query with RM3 expansion terms (original terms keep weight 1). */
  expanded: Map<string, number>;
  /** P(category | query), from the first pass. */
  intent: Map<string, number>;
  /** The query's own product type (head noun), when it has one. */
  head: string;
}

export interface SearchHit {
  itemId: string;
  score: number;
  /** Each feature's part of the score (parts that are 0 are left out). */
  parts: Partial<Record<SearchFeature, number>>;
  features: Float32Array;
}

export interface SearchResult {
  understanding: QueryUnderstanding;
  hits: SearchHit[];
  scorer: string;
}

export interface CandidateOptions {
  semantic?: ReadonlyMap<string, number> | undefined;
  signals?: ((itemId: string) => ItemSignals | undefined) | undefined;
  /** Related terms learned from the shop's co-clicks (production; none offline). */
  synonyms?: CoClickSynonyms | undefined;
}

export interface CandidateSet {
  understanding: QueryUnderstanding;
  /** Catalog positions of the candidates (index into `engine.ids`). */
  docs: number[];
  rows: Float32Array[];
}

function mapTop(scores: Float32Array, n: number): number[] {
  return topDocs(scores, n).filter((d) => (scores[d] as number) > 0);
}

function maxOf(xs: Float32Array): number {
  let m = 0;
  for (const x of xs) if (x > m) m = x;
  return m;
}

export class SearchEngine {
  readonly index: FieldIndex;
  readonly config: SearchEngineConfig;
  private readonly spelling: SpellingCorrector | undefined;
  /** The analyzer without typed forms: the query's and titles' normalized terms the coverage features compare. */
  private readonly normalizing: AnalyzerOptions;
  /** Per slot of the index: intent category, analyzed title, whether there is a description. */
  private readonly categories: string[] = [];
  private readonly titleTerms: string[][] = [];
  private readonly hasDescription: boolean[] = [];

  constructor(docs: readonly SearchDoc[], config: Partial<SearchEngineConfig> = {}) {
    this.config = { ...DEFAULT_SEARCH_CONFIG, ...config };
    this.index = new FieldIndex([], this.config.analyzer);
    this.normalizing = { ...this.config.analyzer, exact: false };
    this.spelling = this.config.spelling ? new SpellingCorrector(this.index.termCounts) : undefined;
    this.upsert(docs);
  }

  /** Adds or replaces items (one index update each; nothing is rebuilt). */
  upsert(docs: Iterable<SearchDoc>): void {
    for (const d of docs) {
      const { slot, newTerms } = this.index.set(d);
      for (const t of newTerms) this.spelling?.add(t);
      this.categories[slot] = intentCategory(d, this.config.analyzer);
      this.titleTerms[slot] = analyze(d.title, this.normalizing);
      this.hasDescription[slot] = (d.description ?? '').trim().length > 0;
    }
  }

  delete(ids: Iterable<string>): void {
    for (const id of ids) {
      const slot = this.index.slot(id);
      if (slot === undefined) continue;
      this.index.delete(id);
      this.categories[slot] = '';
      this.titleTerms[slot] = [];
      this.hasDescription[slot] = false;
    }
  }

  /** Item id per slot ('' for a free slot). */
  get ids(): readonly string[] {
    return this.index.ids;
  }

  /** Items indexed. */
  get size(): number {
    return this.index.count;
  }

  categoryOf(doc: number): string {
    return this.categories[doc] ?? '';
  }

  /**
   * Analysis, spelling, expansion (RM3 from the catalog, plus related terms from co-clicks when the
   * shop has them) and category intent for one query.
   */
  understand(query: string, synonyms?: CoClickSynonyms): QueryUnderstanding {
    return this.understandWithScores(query, synonyms).understanding;
  }

  private understandWithScores(
    query: string,
    synonyms: CoClickSynonyms | undefined,
  ): { understanding: QueryUnderstanding; first: Float32Array } {
    const analyzed = analyze(query, this.config.analyzer);
    const corrections = this.spelling?.correct(analyzed) ?? [];
    const fixed = new Map(corrections.map((c) => [c.from, c.to]));
    const terms = new Map<string, number>();
    for (const t of analyzed) for (const u of fixed.get(t) ?? [t]) terms.set(u, 1);
    const first = this.index.bm25f(terms, this.config.bm25f);
    const rm3Terms = this.config.rm3 ? rm3(this.index, terms, first, this.config.rm3) : terms;
    const expanded = withRelated(rm3Terms, synonyms?.expand(terms.keys()) ?? new Map<string, number>());
    const intent =
      this.config.intentDocs > 0
        ? categoryDistribution(
            this.categories,
            mapTop(first, this.config.intentDocs).map((doc) => ({ doc, score: first[doc] as number })),
          )
        : new Map<string, number>();
    const head = productType(query, this.config.analyzer);
    return { understanding: { query, terms, corrections, expanded, intent, head }, first };
  }

  /**
   * Candidates for a query with their feature rows: the lexical top, the expanded query's top, and the
   * semantic neighbours (item id -> cosine similarity) the caller retrieved with the text encoder.
   */
  candidates(query: string, opts: CandidateOptions = {}): CandidateSet {
    const { understanding: u, first: bm25f } = this.understandWithScores(query, opts.synonyms);
    const p = this.config.bm25f;
    const title = this.index.bm25(u.terms, 'title', p.k1, p.b.title);
    const description = this.index.bm25(u.terms, 'description', p.k1, p.b.description);
    const expanded = u.expanded.size > u.terms.size ? this.index.bm25f(u.expanded, p) : bm25f;
    const n = this.config.candidates;
    const pool = new Set<number>([...mapTop(bm25f, n), ...mapTop(expanded, Math.ceil(n / 2))]);
    const semantic = new Map<number, number>();
    for (const [id, s] of opts.semantic ?? []) {
      const d = this.index.slot(id);
      if (d === undefined) continue;
      semantic.set(d, s);
      pool.add(d);
    }
    const docs = [...pool];
    const bmax = maxOf(bm25f) || 1;
    const emax = maxOf(expanded) || 1;
    // Coverage, phrase and length compare normalized forms (a plural covers its singular); BM25 also
    // scores the typed forms.
    const queryTerms = analyze(query, this.normalizing);
    const fixed = new Map(u.corrections.map((c) => [c.from, c.to]));
    const normalized = new Set(queryTerms.flatMap((t) => fixed.get(t) ?? [t]));
    const idf = new Map([...normalized].map((t) => [t, this.index.idf(t)]));
    const idfSum = [...idf.values()].reduce((a, x) => a + x, 0) || 1;
    const bigrams = new Set<string>();
    for (let i = 0; i + 1 < queryTerms.length; i++) bigrams.add(`${queryTerms[i]} ${queryTerms[i + 1]}`);
    const rows = docs.map((d) => {
      const tt = this.titleTerms[d] as string[];
      const inTitle = new Set(tt);
      const all = this.index.docTerms[d] as Map<string, number>;
      let titleCov = 0;
      let cov = 0;
      let missingInTitle = 0;
      for (const [t, w] of idf) {
        if (inTitle.has(t)) titleCov += w;
        else missingInTitle++;
        if (all.has(t)) cov += w;
      }
      let phrase = 0;
      if (bigrams.size > 0) {
        for (let i = 0; i + 1 < tt.length; i++) if (bigrams.has(`${tt[i]} ${tt[i + 1]}`)) phrase++;
        phrase = Math.min(1, phrase / bigrams.size);
      }
      const cat = this.categories[d] ?? '';
      const signals = opts.signals?.(this.index.ids[d] as string);
      const values: Partial<Record<SearchFeature, number>> = {
        bm25f: bm25f[d] as number,
        bm25f_norm: (bm25f[d] as number) / bmax,
        bm25_title: title[d] as number,
        bm25_description: description[d] as number,
        title_coverage: titleCov / idfSum,
        coverage: cov / idfSum,
        all_in_title: missingInTitle === 0 ? 1 : 0,
        title_phrase: phrase,
        rm3_norm: (expanded[d] as number) / emax,
        semantic: semantic.get(d) ?? 0,
        intent: cat ? (u.intent.get(cat) ?? 0) : 0,
        head_match: u.head !== '' && cat === u.head ? 1 : 0,
        title_length_log: Math.log1p(tt.length),
        no_description: this.hasDescription[d] ? 0 : 1,
        query_terms: normalized.size,
        popularity_log: Math.log1p(Math.max(0, signals?.popularity ?? 0)),
        ctr: signals?.ctr ?? 0,
      };
      return featureRow(values);
    });
    return { understanding: u, docs, rows };
  }

  /** Candidates ordered by `scorer`, best first (ties: catalog order), at most `limit`. */
  async search(
    query: string,
    scorer: BatchScorer,
    opts: CandidateOptions & { limit?: number | undefined } = {},
  ): Promise<SearchResult> {
    const set = this.candidates(query, opts);
    const { scores, parts } = await scorer.score(set.rows);
    const order = set.docs
      .map((doc, i) => ({ doc, i }))
      .sort((a, b) => (scores[b.i] as number) - (scores[a.i] as number) || a.doc - b.doc)
      .slice(0, opts.limit ?? set.docs.length);
    const hits = order.map(({ doc, i }) => {
      const named: Partial<Record<SearchFeature, number>> = {};
      SEARCH_FEATURES.forEach((f, j) => {
        const v = (parts[i] as Float32Array)[j] as number;
        if (v !== 0) named[f] = v;
      });
      return {
        itemId: this.index.ids[doc] as string,
        score: scores[i] as number,
        parts: named,
        features: set.rows[i] as Float32Array,
      };
    });
    return { understanding: set.understanding, hits, scorer: scorer.version };
  }
}
