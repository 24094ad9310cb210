/**
 * Text analysis for product search: the one function that turns a title, a description or a query into
 * index terms, used by the index, the query understanding steps, the evaluation and ranking's Search.
 *
 * - Unicode: NFKC (full-width digits and letters become ASCII), diacritics stripped, lower-cased.
 * - Plurals: a light English stemmer (`boxes` -> `box`, `batteries` -> `battery`, `shoes` -> `shoe`).
 * - Units: a number followed by a unit, written together or apart (`12oz`, `12 oz`, `12-ounce`), also
 *   yields one canonical term (`12oz`); inch and foot marks (`8"`, `6'`) become `in` and `ft`.
 * - Model numbers: `WR-44526`, `Pro8200`, `Blu-ray` yield their parts (`wr`, `44526`; `pro`, `8200`)
 *   and the joined form (`wr44526`, `pro8200`, `bluray`), so either spelling finds the other.
 * - CJK (Han, Kana, Hangul): character unigrams and bigrams, since those scripts do not separate words.
 * - Typed forms (`exact`): each word's own tokens (its letter/digit runs, as plain BM25 reads them) are
 *   kept next to the normalized forms (`20 Gram` -> `gram` besides `g`, `20g`; `Shoes` -> `shoes` besides
 *   `shoe`; `1.75mm` -> `1`, `75mm` besides `1.75`, `mm`, `1.75mm`): normalization only adds matches, so
 *   a query typed the way a title is written finds it at least as plain BM25 does. Without them, exact
 *   title fragments lost 0.05 NDCG@10 to plain BM25 on amazon-scientific (docs/ml.md).
 */
export interface AnalyzerOptions {
  stem: boolean;
  units: boolean;
  modelNumbers: boolean;
  cjk: boolean;
  /** Keep each word's typed tokens (lower-cased letter/digit runs) next to its normalized forms. */
  exact: boolean;
}

export const DEFAULT_ANALYZER: AnalyzerOptions = {
  stem: true,
  units: true,
  modelNumbers: true,
  cjk: true,
  exact: true,
};

/** The baseline tokenization (lower-case alphanumeric runs, nothing else), for comparisons. */
export const PLAIN_ANALYZER: AnalyzerOptions = {
  stem: false,
  units: false,
  modelNumbers: false,
  cjk: false,
  exact: false,
};

const UNITS: Record<string, string> = {
  oz: 'oz',
  ounce: 'oz',
  ounces: 'oz',
  floz: 'floz',
  lb: 'lb',
  lbs: 'lb',
  pound: 'lb',
  pounds: 'lb',
  in: 'in',
  inch: 'in',
  inches: 'in',
  ft: 'ft',
  foot: 'ft',
  feet: 'ft',
  mm: 'mm',
  cm: 'cm',
  ml: 'ml',
  l: 'l',
  liter: 'l',
  liters: 'l',
  litre: 'l',
  litres: 'l',
  g: 'g',
  gram: 'g',
  grams: 'g',
  kg: 'kg',
  qt: 'qt',
  quart: 'qt',
  quarts: 'qt',
  gal: 'gal',
  gallon: 'gal',
  gallons: 'gal',
  gb: 'gb',
  tb: 'tb',
  mb: 'mb',
  mah: 'mah',
  w: 'w',
  watt: 'w',
  watts: 'w',
  v: 'v',
  volt: 'v',
  volts: 'v',
  hz: 'hz',
  ghz: 'ghz',
  mhz: 'mhz',
  pk: 'pack',
  pack: 'pack',
  packs: 'pack',
  ct: 'count',
  count: 'count',
  pc: 'pc',
  pcs: 'pc',
  piece: 'pc',
  pieces: 'pc',
};

const NUMBER = /^\d+(?:[.,/]\d+)?$/;
const LETTERS = /^\p{L}+$/u;
const WORD_CHAR = /[\p{L}\p{N}]/u;

const CJK_RANGES =
  '\\u1100-\\u11ff\\u3040-\\u30ff\\u3130-\\u318f\\u31f0-\\u31ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff\\u{20000}-\\u{2ebef}';
const CJK_RUN = new RegExp(`[${CJK_RANGES}]+`, 'gu');
const HAS_CJK = new RegExp(`[${CJK_RANGES}]`, 'u');
const WORD_RUN = /[\p{L}\p{N}]+(?:[-./'][\p{L}\p{N}]+)*/gu;

export function isCjk(cp: number): boolean {
  return HAS_CJK.test(String.fromCodePoint(cp));
}

/** NFKC, diacritics stripped (NFKD marks removed, then recomposed), lower-cased. */
export function normalizeText(text: string): string {
  return text
    .normalize('NFKC')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
    .toLowerCase();
}

/**
 * Light English plural stemmer (after Harman's S-stemmer, with the -ches/-shes/-xes/-sses rule that
 * keeps `box` and `boxes` together). Only alphabetic words of four or more letters are touched.
 */
export function stemPlural(w: string): string {
  if (w.length < 4 || !LETTERS.test(w)) return w;
  if (w.endsWith('ies') && !w.endsWith('eies') && !w.endsWith('aies')) return w.slice(0, -3) + 'y';
  if (/(?:ches|shes|sses|xes|zzes)$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('s') && !/(?:ss|us|is|ys)$/.test(w)) return w.slice(0, -1);
  return w;
}

interface Segment {
  kind: 'word' | 'cjk';
  text: string;
}

/** Splits normalized text into CJK runs and word runs; a word run keeps inner `-./'` between word characters. */
function segments(text: string, cjk: boolean): Segment[] {
  const words = (t: string): Segment[] => Array.from(t.matchAll(WORD_RUN), (m) => ({ kind: 'word', text: m[0] }));
  if (!cjk || !HAS_CJK.test(text)) return words(text);
  const out: Segment[] = [];
  let last = 0;
  for (const m of text.matchAll(CJK_RUN)) {
    out.push(...words(text.slice(last, m.index)), { kind: 'cjk', text: m[0] });
    last = m.index + m[0].length;
  }
  out.push(...words(text.slice(last)));
  return out;
}

/** Parts of a word run: split at connectors (decimals and fractions stay whole), apostrophes dropped. */
function parts(run: string, modelNumbers: boolean): string[] {
  const pieces = run
    .replace(/(\p{L})'(\p{L})/gu, '$1$2')
    .split(/(?<!\d)[-./']|[-./'](?!\d)|(?<=\d)-(?=\d)/u)
    .filter((p) => p.length > 0);
  if (!modelNumbers) return pieces.flatMap((p) => p.split(/[^\p{L}\p{N}]+/u).filter(Boolean));
  // Letter/digit boundaries: "pro8200" -> "pro", "8200"; "12oz" -> "12", "oz".
  return pieces.flatMap((p) => p.match(/\d+(?:[.,/]\d+)*|\p{L}+|[^\p{L}\d]+/gu) ?? []).filter((p) => WORD_CHAR.test(p));
}

/**
 * Index terms of a text, in order of appearance (duplicates kept: term frequency matters). The same
 * function analyzes documents and queries.
 */
export function analyze(text: string, opts: AnalyzerOptions = DEFAULT_ANALYZER): string[] {
  // The reference tokenization of the data sets' published BM25 figures: ASCII alphanumeric runs.
  if (!opts.modelNumbers && !opts.units && !opts.stem && !opts.cjk) return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  let norm = normalizeText(text);
  if (opts.units) norm = norm.replace(/(\d)(?:"|''|”)/g, '$1 in ').replace(/(\d)(?:'|’)(?!\p{L})/gu, '$1 ft ');
  const out: string[] = [];
  let prevNumber: string | undefined;
  for (const seg of segments(norm, opts.cjk)) {
    if (seg.kind === 'cjk') {
      const cs = Array.from(seg.text);
      for (let k = 0; k < cs.length; k++) {
        out.push(cs[k] as string);
        if (k + 1 < cs.length) out.push((cs[k] as string) + (cs[k + 1] as string));
      }
      prevNumber = undefined;
      continue;
    }
    const start = out.length;
    const ps = parts(seg.text, opts.modelNumbers);
    for (const p of ps) {
      const unit = opts.units ? UNITS[p] : undefined;
      if (unit !== undefined && prevNumber !== undefined) {
        out.push(unit, `${prevNumber}${unit}`);
        prevNumber = undefined;
        continue;
      }
      out.push(opts.stem ? stemPlural(p) : p);
      prevNumber = NUMBER.test(p) ? p.replace(',', '.') : undefined;
    }
    if (opts.modelNumbers && ps.length > 1) {
      const joined = ps.join('');
      // A number with its unit already has its canonical form; everything else gets the joined form.
      if (!(ps.length === 2 && NUMBER.test(ps[0] as string) && opts.units && UNITS[ps[1] as string] !== undefined))
        out.push(joined);
    }
    if (opts.exact) {
      // The word as typed: its letter/digit runs, where normalization replaced or joined them.
      const made = new Set(out.slice(start));
      for (const w of seg.text.match(/[\p{L}\p{N}]+/gu) ?? []) if (!made.has(w)) out.push(w);
    }
  }
  return out;
}

/** The distinct terms of a query, in order. */
export function queryTerms(query: string, opts: AnalyzerOptions = DEFAULT_ANALYZER): string[] {
  return [...new Set(analyze(query, opts))];
}
