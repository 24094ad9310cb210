import { analyze, type AnalyzerOptions, DEFAULT_ANALYZER } from './analyzer';

/**
 * Synonyms and related terms learned from co-clicks: a translation model (Berger & Lafferty 1999) from
 * query terms to the title terms of the items shoppers chose after those queries. `tv` learns
 * `television`, `sofa` learns `couch` when shoppers who type one click items titled with the other. A
 * term pair counts only when it is seen for at least `minQueries` distinct queries, so that one odd
 * session does not teach a synonym.
 */
export interface SynonymOptions {
  /** Expansion terms per query. */
  terms: number;
  /** Smallest P(title term | query term) kept. */
  minProbability: number;
  minQueries: number;
}

export const DEFAULT_SYNONYMS: SynonymOptions = { terms: 8, minProbability: 0.05, minQueries: 2 };

export interface Feedback {
  query: string;
  /** Title of an item chosen after the query, and how strongly (click 1 .. purchase 3). */
  title: string;
  gain: number;
}

/** The learned table as plain JSON (published in the search model's sidecar). */
export interface SynonymsJson {
  opts: SynonymOptions;
  translation: Array<[string, Array<[string, number]>]>;
}

export class CoClickSynonyms {
  private readonly translation = new Map<string, Map<string, number>>();

  static fromJSON(json: SynonymsJson, analyzer: AnalyzerOptions = DEFAULT_ANALYZER): CoClickSynonyms {
    const s = new CoClickSynonyms([], json.opts, analyzer);
    for (const [q, ts] of json.translation) s.translation.set(q, new Map(ts));
    return s;
  }

  toJSON(): SynonymsJson {
    return { opts: this.opts, translation: [...this.translation].map(([q, m]) => [q, [...m]]) };
  }

  constructor(
    feedback: readonly Feedback[],
    readonly opts: SynonymOptions = DEFAULT_SYNONYMS,
    readonly analyzer: AnalyzerOptions = DEFAULT_ANALYZER,
  ) {
    const mass = new Map<string, Map<string, number>>();
    const support = new Map<string, Set<string>>();
    for (const f of feedback) {
      if (f.gain <= 0) continue;
      const qTerms = new Set(analyze(f.query, analyzer));
      const tTerms = analyze(f.title, analyzer);
      if (qTerms.size === 0 || tTerms.length === 0) continue;
      const share = f.gain / tTerms.length;
      for (const q of qTerms) {
        let m = mass.get(q);
        if (!m) mass.set(q, (m = new Map<string, number>()));
        for (const t of tTerms) {
          m.set(t, (m.get(t) ?? 0) + share);
          const key = `${q}\u001f${t}`;
          let s = support.get(key);
          if (!s) support.set(key, (s = new Set()));
          s.add(f.query);
        }
      }
    }
    for (const [q, m] of mass) {
      const total = [...m.values()].reduce((a, x) => a + x, 0);
      const kept = new Map<string, number>();
      for (const [t, x] of m)
        if (
          t !== q &&
          x / total >= opts.minProbability &&
          (support.get(`${q}\u001f${t}`)?.size ?? 0) >= opts.minQueries
        )
          kept.set(t, x / total);
      if (kept.size > 0) this.translation.set(q, kept);
    }
  }

  get size(): number {
    return this.translation.size;
  }

  /** Related terms for a query's terms, with weights summing to at most 1 per query term. */
  expand(terms: Iterable<string>): Map<string, number> {
    const own = new Set(terms);
    const out = new Map<string, number>();
    for (const q of own)
      for (const [t, p] of this.translation.get(q) ?? []) if (!own.has(t)) out.set(t, (out.get(t) ?? 0) + p);
    return new Map([...out.entries()].sort((a, b) => b[1] - a[1]).slice(0, this.opts.terms));
  }
}

/** A query with related terms added at half their translation probability (the user's words lead). */
export function withRelated(
  terms: ReadonlyMap<string, number>,
  related: ReadonlyMap<string, number>,
): Map<string, number> {
  const out = new Map(terms);
  for (const [t, w] of related) out.set(t, (out.get(t) ?? 0) + w / 2);
  return out;
}
