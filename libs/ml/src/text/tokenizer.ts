/**
 * The one tokenizer/hasher shared by the trainer (TF.js) and the services (ONNX inputs): lower-cased
 * word tokens, word bigrams and character trigrams of each word (with boundary marks), each hashed
 * with 32-bit FNV-1a into `buckets` ids (1..buckets; 0 is padding). As in Nigam et al., "Semantic
 * Product Search" (KDD 2019). Changing anything here changes every trained text model: the golden
 * vectors in tokenizer.spec.ts guard it.
 */

export interface HasherConfig {
  buckets: number;
  /** Most ids per text (the rest is dropped; words first, then bigrams, then trigrams). */
  maxIds: number;
}

export const DEFAULT_HASHER: HasherConfig = { buckets: 1 << 16, maxIds: 96 };

/** Lower-case, strip diacritics, split on anything that is not a letter or digit. */
export function words(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

const encoder = new TextEncoder();

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Hashed feature ids of a text, in order: words, word bigrams, char trigrams. Duplicates kept (bag). */
export function hashText(text: string, cfg: HasherConfig = DEFAULT_HASHER): Int32Array {
  const ws = words(text);
  const feats: string[] = ws.map((w) => `w:${w}`);
  for (let i = 0; i + 1 < ws.length; i++) feats.push(`b:${ws[i]} ${ws[i + 1]}`);
  for (const w of ws) {
    const padded = `<${w}>`;
    for (let i = 0; i + 3 <= padded.length; i++) feats.push(`c:${padded.slice(i, i + 3)}`);
  }
  const n = Math.min(cfg.maxIds, feats.length);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 + (fnv1a(feats[i] as string) % cfg.buckets);
  return out;
}

/** Right-padded [texts, width] id matrix for a batch. */
export function hashBatch(
  texts: readonly string[],
  cfg: HasherConfig = DEFAULT_HASHER,
): { ids: Int32Array; width: number } {
  const rows = texts.map((t) => hashText(t, cfg));
  const width = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(texts.length * width);
  rows.forEach((r, i) => ids.set(r, i * width));
  return { ids, width };
}
