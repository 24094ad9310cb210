import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SearchDoc } from '../search/field-index';

/**
 * A product-search relevance data set in the layout of `../shared/data/crowdflower-search`:
 *   corpus.jsonl  {"doc_id", "title", "description"?, "brand"?, "category"?} per line
 *   queries.tsv   qid<TAB>query text
 *   qrels.tsv     TREC "qid 0 doc_id gain" (optional: a shop without judgements still has a catalog)
 *   folds.tsv     qid<TAB>fold (optional: without it folds are assigned by a hash of the qid)
 */
export interface SearchDataset {
  name: string;
  docs: SearchDoc[];
  queries: Array<{ qid: string; text: string }>;
  /** qid -> doc id -> gain */
  qrels: Map<string, Map<string, number>>;
  /** qid -> fold (1..k) */
  folds: Map<string, number>;
}

export class SearchDatasetError extends Error {
  override readonly name = 'SearchDatasetError';
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim().length > 0);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

export function readSearchDataset(dir: string, defaultFolds = 5): SearchDataset {
  const corpus = join(dir, 'corpus.jsonl');
  if (!existsSync(corpus)) throw new SearchDatasetError(`${dir}: no corpus.jsonl`);
  const docs = lines(corpus).map((l, n) => {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(l) as Record<string, unknown>;
    } catch (err) {
      throw new SearchDatasetError(`${corpus}:${n + 1}: not JSON`, { cause: err });
    }
    const id = str(o['doc_id']);
    if (!id) throw new SearchDatasetError(`${corpus}:${n + 1}: doc_id missing`);
    return {
      id,
      title: str(o['title']) ?? '',
      description: str(o['description']),
      brand: str(o['brand']),
      category: str(o['category']),
    };
  });
  const queries = lines(join(dir, 'queries.tsv')).map((l, n) => {
    const tab = l.indexOf('\t');
    if (tab <= 0) throw new SearchDatasetError(`queries.tsv:${n + 1}: expected qid<TAB>text`);
    return { qid: l.slice(0, tab), text: l.slice(tab + 1) };
  });
  const qrels = new Map<string, Map<string, number>>();
  if (existsSync(join(dir, 'qrels.tsv')))
    lines(join(dir, 'qrels.tsv')).forEach((l, n) => {
      const [qid, , doc, gain] = l.trim().split(/\s+/);
      const g = Number(gain);
      if (!qid || !doc || !Number.isFinite(g))
        throw new SearchDatasetError(`qrels.tsv:${n + 1}: expected qid 0 doc gain`);
      let m = qrels.get(qid);
      if (!m) qrels.set(qid, (m = new Map<string, number>()));
      m.set(doc, g);
    });
  const folds = new Map<string, number>();
  if (existsSync(join(dir, 'folds.tsv')))
    for (const l of lines(join(dir, 'folds.tsv'))) {
      const [qid, fold] = l.split('\t');
      if (qid && Number.isInteger(Number(fold))) folds.set(qid, Number(fold));
    }
  for (const q of queries) if (!folds.has(q.qid)) folds.set(q.qid, 1 + (hashString(q.qid) % defaultFolds));
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;
  return { name, docs, queries, qrels, folds };
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
