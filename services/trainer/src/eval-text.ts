import {
  Bm25Index,
  cosineScores,
  encoderRetriever,
  initBackend,
  localScorer,
  mulberry32,
  pseudoQueries,
  readRecbole,
  DEFAULT_ANALYZER,
  TextEncoder2T,
  trainSearchScorer,
  words,
  type SearchDoc,
  type SearchEngineConfig,
  type SemanticRetriever,
  type TextEncoderConfig,
} from '@aisle/ml';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { applyRules, MAX_LIMIT } from '@aisle/ranking-core';
import { Progress, table } from './progress';
import { ServedSearch } from './search-served';

/**
 * `aisle eval --model text` on an item-text data set (amazon-scientific). The task: held-out queries
 * made of 1-4 contiguous words of an item's title (fragments never used in training), and the same
 * queries with one typo per word of 5+ letters; rank every item; the source item is the answer.
 * Training pairs are other fragments of the same catalog (title fragment -> item), as a shop would
 * generate them from its catalog before it has search logs.
 */
export interface TextEvalOptions {
  dataset: string;
  seed: number;
  model: Partial<TextEncoderConfig>;
  trainFragmentsPerItem: number;
  out: string;
  curve?: string;
  /**
   * Score validation fragments instead of the test ones, with the served pipeline's ablations (the slice
   * Search's settings are chosen on; the test fragments are not scored).
   */
  validation?: boolean;
  /** Pseudo-queries the default search scorer learns from (the catalog's own; no judgements). */
  pseudoQueries?: number;
}

/** Pseudo-queries for the default search scorer unless told otherwise. */
export const TEXT_EVAL_PSEUDO_QUERIES = 1000;

/** Validation fragments: one per drawn item, up to this many. */
export const VALIDATION_FRAGMENTS = 600;

interface Row {
  method: string;
  queries: string;
  hr10: number;
  ndcg10: number;
  mrr: number;
}

export function splitItemText(text: string): { title: string; category: string; brand: string } {
  const parts = text.replace(/\.\s*$/, '').split('. ');
  const brand = parts.length >= 3 ? (parts.pop() ?? '') : '';
  const category = parts.length >= 2 ? (parts.pop() ?? '') : '';
  return { title: parts.join('. '), category, brand };
}

function fragment(titleWords: string[], rand: () => number): string {
  const len = Math.min(titleWords.length, 1 + Math.floor(rand() * 4));
  const start = Math.floor(rand() * (titleWords.length - len + 1));
  return titleWords.slice(start, start + len).join(' ');
}

export function typo(q: string, rand: () => number): string {
  return q
    .split(' ')
    .map((w) => {
      if (w.length < 5) return w;
      const i = 1 + Math.floor(rand() * (w.length - 2));
      const kind = Math.floor(rand() * 3);
      if (kind === 0) return w.slice(0, i) + w.slice(i + 1); // deletion
      if (kind === 1) return w.slice(0, i) + (w[i + 1] ?? '') + (w[i] ?? '') + w.slice(i + 2); // swap
      return w.slice(0, i) + String.fromCharCode(97 + Math.floor(rand() * 26)) + w.slice(i + 1); // substitution
    })
    .join(' ');
}

function rankOf(scores: Float32Array, target: number): number {
  const t = scores[target] as number;
  let r = 0;
  for (let i = 0; i < scores.length; i++)
    if (i !== target && ((scores[i] as number) > t || ((scores[i] as number) === t && i < target))) r++;
  return r;
}

function metrics(ranks: number[]): { hr10: number; ndcg10: number; mrr: number } {
  const n = Math.max(1, ranks.length);
  return {
    hr10: ranks.filter((r) => r < 10).length / n,
    ndcg10: ranks.reduce((a, r) => a + (r < 10 ? 1 / Math.log2(r + 2) : 0), 0) / n,
    mrr: ranks.reduce((a, r) => a + 1 / (r + 1), 0) / n,
  };
}

/** Min-max normalizes and sums two score vectors (hybrid lexical + semantic retrieval). */
export function fuse(lexical: Float32Array, semantic: Float32Array, semanticWeight: number): Float32Array {
  let lmax = 0;
  for (const s of lexical) lmax = Math.max(lmax, s);
  const out = new Float32Array(lexical.length);
  for (let i = 0; i < out.length; i++)
    out[i] = (1 - semanticWeight) * ((lexical[i] as number) / (lmax || 1)) + semanticWeight * (semantic[i] as number);
  return out;
}

/**
 * Fragments of up to `VALIDATION_FRAGMENTS` randomly drawn items (one each), never a training or a test
 * fragment of that item (`excluded`: `item:fragment`).
 */
function validationFragments(
  titles: string[][],
  excluded: ReadonlySet<string>,
  seed: number,
): Array<{ item: number; clean: string; typo: string }> {
  const rand = mulberry32(seed + 2000);
  const order = titles.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const out: Array<{ item: number; clean: string; typo: string }> = [];
  for (const i of order) {
    const tw = titles[i] as string[];
    for (let attempt = 0; attempt < 40 && tw.length > 0 && out.length < VALIDATION_FRAGMENTS; attempt++) {
      const f = fragment(tw, rand);
      if (excluded.has(`${i}:${f}`) || f.length < 3) continue;
      out.push({ item: i, clean: f, typo: typo(f, rand) });
      break;
    }
  }
  return out;
}

/**
 * Ranking's Search over the catalog as served, with the default scorer learned from the catalog's
 * pseudo-queries (no judgements) and the encoder's neighbours; `engine` changes the search engine's
 * settings (ablations).
 */
async function servedWith(
  docs: readonly SearchDoc[],
  engine: Partial<SearchEngineConfig>,
  semantic: SemanticRetriever | undefined,
  opts: Pick<TextEvalOptions, 'seed' | 'pseudoQueries'>,
): Promise<ServedSearch> {
  const served = new ServedSearch(docs, engine);
  const pseudo = pseudoQueries(docs, opts.pseudoQueries ?? TEXT_EVAL_PSEUDO_QUERIES, mulberry32(opts.seed + 17));
  const scorer = await trainSearchScorer(served.catalog.engine, { pseudo }, { semantic });
  served.use(localScorer(scorer, 'eval'), semantic);
  return served;
}

export async function evaluateTextEncoder(
  opts: TextEvalOptions,
): Promise<{ rows: Row[]; summary: string; wallSeconds: number }> {
  const started = performance.now();
  const progress = new Progress();
  const { backend } = await initBackend({ log: (m) => progress.log(m) });
  const base = opts.dataset.replace(/\/+$/, '').split('/').pop() ?? '';
  const name = base === 'amazon-scientific' ? 'Scientific' : base;
  const d = readRecbole(opts.dataset, name);
  const itemIds = [...d.texts.keys()];
  const texts = itemIds.map((id) => d.texts.get(id) ?? '');
  const titles = texts.map((t) => words(splitItemText(t).title));
  progress.log(`data set ${opts.dataset}: ${itemIds.length} items with text; backend ${backend}`);

  const rand = mulberry32(opts.seed);
  const pairs: Array<[string, string]> = [];
  const trainFragments = new Set<string>();
  titles.forEach((tw, i) => {
    if (tw.length === 0) return;
    for (let k = 0; k < opts.trainFragmentsPerItem; k++) {
      const f = fragment(tw, rand);
      trainFragments.add(`${i}:${f}`);
      pairs.push([f, texts[i] as string]);
    }
  });
  const evalRand = mulberry32(opts.seed + 1000);
  const queries: Array<{ item: number; clean: string; typo: string }> = [];
  titles.forEach((tw, i) => {
    for (let attempt = 0, kept = 0; attempt < 20 && kept < 2 && tw.length > 0; attempt++) {
      const f = fragment(tw, evalRand);
      if (trainFragments.has(`${i}:${f}`) || f.length < 3) continue;
      queries.push({ item: i, clean: f, typo: typo(f, evalRand) });
      kept++;
    }
  });
  if (opts.validation) {
    const excluded = new Set([...trainFragments, ...queries.map((q) => `${q.item}:${q.clean}`)]);
    queries.splice(0, queries.length, ...validationFragments(titles, excluded, opts.seed));
  }
  const kindOf = opts.validation ? 'validation' : 'held-out';
  progress.log(`${pairs.length} training pairs (title fragment -> item); ${queries.length} ${kindOf} queries`);

  const model = new TextEncoder2T({ ...opts.model, seed: opts.seed });
  const losses = await model.fit(pairs, {
    onEpoch: (e, loss, s) => progress.log(`epoch ${e}: in-batch softmax loss ${loss.toFixed(4)} (${s.toFixed(0)} s)`),
  });
  const dim = model.cfg.dim;
  const itemEmb = new Float32Array(itemIds.length * dim);
  for (let s = 0; s < texts.length; s += 512) itemEmb.set(model.encode(texts.slice(s, s + 512), 'item'), s * dim);
  const bm25 = new Bm25Index(texts);
  // What ranking's Search serves: its pipeline over this catalog's search engine, with the default scorer
  // learned from this catalog (no judgements) and the encoder's neighbours.
  const docs = itemIds.map((id, i) => ({ id, ...splitItemText(texts[i] as string) }));
  const { retrieve } = encoderRetriever(model, docs);
  const servedSearch = await servedWith(docs, {}, retrieve, opts);
  const rankIn = (ids: readonly string[], target: number) => {
    const r = ids.indexOf(itemIds[target] as string);
    return r >= 0 ? r : itemIds.length;
  };
  const servedRank = async (q: string, target: number) => rankIn(await servedSearch.search(q, MAX_LIMIT), target);
  // Validation only: each suspect of the exact-fragment gap to BM25, one change to what is served.
  const ablations: Record<string, (q: string, target: number) => Promise<number>> = {};
  if (opts.validation) {
    const variant = (s: ServedSearch) => async (q: string, t: number) => rankIn(await s.search(q, MAX_LIMIT), t);
    ablations['served, with the per-category limit Recommend has (3 in the first ten)'] = async (q, t) => {
      const ids = await servedSearch.search(q, MAX_LIMIT);
      const scored = ids.map((itemId, row) => ({ itemId, score: -row, item: servedSearch.catalog.get(itemId), row }));
      return rankIn(
        applyRules(scored, {}, 3).map((x) => x.itemId),
        t,
      );
    };
    ablations['served, normalized forms only (no typed forms)'] = variant(
      await servedWith(docs, { analyzer: { ...DEFAULT_ANALYZER, exact: false } }, retrieve, opts),
    );
    const fixed = new ServedSearch(docs);
    fixed.use(undefined, retrieve);
    ablations['served, fixed catalog weights (before a search model is published)'] = variant(fixed);
    ablations["served, without the encoder's neighbours"] = variant(await servedWith(docs, {}, undefined, opts));
    ablations['served, 1000 lexical candidates'] = variant(
      await servedWith(docs, { candidates: 1000 }, retrieve, opts),
    );
  }

  const rows: Row[] = [];
  for (const kind of ['clean', 'typo'] as const) {
    const qs = queries.map((q) => q[kind]);
    const qEmb: Float32Array[] = [];
    for (let s = 0; s < qs.length; s += 512) {
      const e = model.encode(qs.slice(s, s + 512), 'query');
      for (let k = 0; k < e.length / dim; k++) qEmb.push(e.subarray(k * dim, (k + 1) * dim));
    }
    const ranks: Record<string, number[]> = {
      BM25: [],
      'text encoder (ours)': [],
      'hybrid BM25 + encoder (ours)': [],
      'search engine, default scorer (what Search serves)': [],
      ...Object.fromEntries(Object.keys(ablations).map((k) => [k, []])),
    };
    for (const [k, q] of queries.entries()) {
      const lex = bm25.scoreAll(qs[k] as string);
      const sem = cosineScores(qEmb[k] as Float32Array, itemEmb, dim);
      ranks['BM25']?.push(rankOf(lex, q.item));
      ranks['text encoder (ours)']?.push(rankOf(sem, q.item));
      ranks['hybrid BM25 + encoder (ours)']?.push(rankOf(fuse(lex, sem, 0.5), q.item));
      ranks['search engine, default scorer (what Search serves)']?.push(await servedRank(qs[k] as string, q.item));
      for (const [name, rank] of Object.entries(ablations)) ranks[name]?.push(await rank(qs[k] as string, q.item));
    }
    for (const [method, r] of Object.entries(ranks))
      rows.push({
        method,
        queries: kind === 'clean' ? `${kindOf} title fragments` : 'same, with typos',
        ...metrics(r),
      });
  }
  model.dispose();
  const wallSeconds = (performance.now() - started) / 1000;
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(
    opts.out,
    JSON.stringify(
      {
        dataset: opts.dataset,
        task: `${kindOf} title fragment -> item, full ranking over all items`,
        queries: queries.length,
        items: itemIds.length,
        backend,
        losses,
        rows,
        config: model.cfg,
        wallSeconds,
      },
      null,
      2,
    ),
  );
  const summary = [
    `${opts.dataset}: ${queries.length} ${kindOf} queries over ${itemIds.length} items (full ranking)`,
    table(
      rows.map((r) => ({ method: r.method, queries: r.queries, 'HR@10': r.hr10, 'NDCG@10': r.ndcg10, MRR: r.mrr })),
    ),
    `whole command ${wallSeconds.toFixed(0)} s`,
  ].join('\n');
  return { rows, summary, wallSeconds };
}
