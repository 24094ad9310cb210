import { normalizeText } from './analyzer';
import type { SearchDoc } from './field-index';
import { CLAUSE_END, TRAILING_NOISE } from './intent';

/**
 * Queries a shop's catalog implies before anyone has searched it: shoppers name a product type and
 * perhaps a modifier or a brand (`wine rack`, `wall mount wine rack`, `concept housewares wine rack`).
 * From each sampled title: the head noun of its first clause with 0-2 words before it, sometimes with the
 * title's first word (most often the brand). The item the query came from is its one known answer.
 */
export interface PseudoQuery {
  text: string;
  doc: number;
}

export function pseudoQueries(docs: readonly SearchDoc[], count: number, rand: () => number): PseudoQuery[] {
  const out: PseudoQuery[] = [];
  const seen = new Set<string>();
  for (let attempt = 0; out.length < count && attempt < count * 5; attempt++) {
    const doc = Math.floor(rand() * docs.length);
    const clause = normalizeText((docs[doc] as SearchDoc).title).split(CLAUSE_END)[0] ?? '';
    const words = clause.match(/[\p{L}\p{N}][\p{L}\p{N}'&.-]*/gu) ?? [];
    let head = words.length - 1;
    while (head >= 0 && TRAILING_NOISE.test(words[head] as string)) head--;
    if (head < 0) continue;
    const r = rand();
    const len = r < 0.3 ? 1 : r < 0.75 ? 2 : 3;
    const picked = words.slice(Math.max(0, head - len + 1), head + 1);
    if (rand() < 0.25 && head - len + 1 > 0) picked.unshift(words[0] as string);
    const text = picked.join(' ');
    if (text.length < 3 || seen.has(`${doc}:${text}`)) continue;
    seen.add(`${doc}:${text}`);
    out.push({ text, doc });
  }
  return out;
}
