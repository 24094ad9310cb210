/**
 * Spelling correction from the catalog's own vocabulary (no dictionary to ship, no labels): a query term
 * the catalog never uses is replaced by the most frequent catalog term within a small edit distance
 * (Damerau-Levenshtein, 1 for terms up to 7 characters, 2 beyond), found through a symmetric-delete index
 * (SymSpell). A term that splits into two catalog terms (`hardisk` -> `hard disk`) is split when no close
 * spelling exists.
 */
export interface SpellingOptions {
  /** A term used at least this often in the catalog is taken as correctly spelled. */
  minCount: number;
  /** Shortest term that is corrected (short tokens are sizes, codes and abbreviations). */
  minLength: number;
}

export const DEFAULT_SPELLING: SpellingOptions = { minCount: 1, minLength: 4 };

export interface Correction {
  from: string;
  to: string[];
}

function deletes(w: string, depth: number, out: Set<string>): void {
  if (depth === 0 || w.length <= 1) return;
  for (let i = 0; i < w.length; i++) {
    const d = w.slice(0, i) + w.slice(i + 1);
    if (!out.has(d)) {
      out.add(d);
      deletes(d, depth - 1, out);
    }
  }
}

/** Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions), capped. */
export function editDistance(a: string, b: string, cap = 3): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  const m = a.length;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1).fill(0);
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, (prev2[j - 2] as number) + 1);
      cur[j] = v;
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin > cap) return cap + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[n] as number;
}

export class SpellingCorrector {
  private readonly byDelete = new Map<string, string[]>();

  private readonly indexed = new Set<string>();

  /** `counts` is read live: terms whose count drops to 0 are no longer suggested. */
  constructor(
    private readonly counts: ReadonlyMap<string, number>,
    private readonly opts: SpellingOptions = DEFAULT_SPELLING,
  ) {
    for (const w of counts.keys()) this.add(w);
  }

  /** Makes a term (new in the catalog) a possible suggestion. */
  add(w: string): void {
    if (this.indexed.has(w) || w.length < this.opts.minLength - 1 || !/^\p{L}+$/u.test(w)) return;
    this.indexed.add(w);
    const keys = new Set<string>([w]);
    deletes(w, 1, keys);
    for (const k of keys) {
      const list = this.byDelete.get(k);
      if (list) list.push(w);
      else this.byDelete.set(k, [w]);
    }
  }

  known(term: string): boolean {
    return (this.counts.get(term) ?? 0) >= this.opts.minCount;
  }

  /** The catalog term closest to an unknown `term` (most frequent among the closest), if any. */
  suggest(term: string): string | undefined {
    if (this.known(term) || term.length < this.opts.minLength || !/^\p{L}+$/u.test(term)) return undefined;
    const maxDistance = term.length <= 7 ? 1 : 2;
    const keys = new Set<string>([term]);
    deletes(term, maxDistance, keys);
    let best: string | undefined;
    let bestDistance = Infinity;
    let bestCount = 0;
    const seen = new Set<string>();
    for (const k of keys)
      for (const w of this.byDelete.get(k) ?? []) {
        if (seen.has(w)) continue;
        seen.add(w);
        const dist = editDistance(term, w, maxDistance);
        if (dist > maxDistance) continue;
        const c = this.counts.get(w) ?? 0;
        if (c < this.opts.minCount) continue;
        if (dist < bestDistance || (dist === bestDistance && c > bestCount)) {
          best = w;
          bestDistance = dist;
          bestCount = c;
        }
      }
    return best;
  }

  /** Two catalog terms that concatenate to `term` (the split with the rarer half most frequent). */
  split(term: string): [string, string] | undefined {
    if (this.known(term) || term.length < 6) return undefined;
    let best: [string, string] | undefined;
    let bestScore = 0;
    for (let i = 3; i <= term.length - 3; i++) {
      // Also with the boundary letter doubled: run-together words often drop one (`hardisk`).
      for (const [a, b] of [
        [term.slice(0, i), term.slice(i)],
        [term.slice(0, i), term.slice(i - 1)],
      ] as const) {
        const score = Math.min(this.counts.get(a) ?? 0, this.counts.get(b) ?? 0);
        if (score > bestScore) {
          best = [a, b];
          bestScore = score;
        }
      }
    }
    return best;
  }

  /** Corrections for the unknown terms of an analyzed query. */
  correct(terms: readonly string[]): Correction[] {
    const out: Correction[] = [];
    for (const t of terms) {
      if (this.known(t)) continue;
      const s = this.suggest(t);
      if (s) out.push({ from: t, to: [s] });
      else {
        const parts = this.split(t);
        if (parts) out.push({ from: t, to: parts });
      }
    }
    return out;
  }
}
