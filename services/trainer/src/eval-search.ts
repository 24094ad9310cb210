import {
  CoClickSynonyms,
  encoderPairs,
  encoderRetriever,
  exportSearchScorer,
  FALLBACK_SEARCH_SCORER,
  FieldIndex,
  fitDefaultScorer,
  fitLinear,
  fitTrees,
  initBackend,
  mulberry32,
  ndcgAt,
  onnxScorer,
  OFFLINE_FROZEN,
  PLAIN_ANALYZER,
  pseudoLabelled,
  pseudoQueries,
  rankingLists,
  readSearchDataset,
  type SearchEngine,
  termWeights,
  TextEncoder2T,
  topDocs,
  withRelated,
  type QueryUnderstanding,
  type RankingList,
  type SearchDataset,
  type SearchFeature,
  type SearchScorer,
} from '@aisle/ml';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Progress, table } from './progress';
import { ServedSearch } from './search-served';

/**
 * `aisle eval --model search` on a product-search relevance data set (crowdflower-search layout): every
 * query ranks the whole catalog; NDCG@10 (linear gain, log2 discount, unjudged = 0) per query, reported
 * as the mean over the data set's query folds with the spread between folds.
 *
 * Rows without labels (BM25, each query-understanding step, the encoder, and the default hybrid that
 * ranking's Search serves) use the catalog only. Learned rows are cross-validated: for each fold, models
 * and choices are fitted on the other folds' judgements and score that fold's queries.
 */
export interface SearchEvalOptions {
  dataset: string;
  seed: number;
  out: string;
  predictionsOut?: string | undefined;
  encoder: { epochs: number; dim: number; pairsPerItem: number; batchSize: number };
  /** Pseudo-queries the default scorer learns from. */
  pseudoQueries: number;
}

export interface SearchEvalRow {
  method: string;
  labels: string;
  /** Mean NDCG@10 over all queries (each scored by what was fitted without its fold). */
  ndcg10: number;
  /** Mean NDCG@10 per fold (fold order as in `folds`). */
  perFold: number[];
}

export interface SearchEvalResult {
  rows: SearchEvalRow[];
  folds: number[];
  summary: string;
  wallSeconds: number;
}

const PREDICTION_DEPTH = 50;
const NO_LABELS = 'none';
const CV_LABELS = 'judgements, other folds';

class Scoreboard {
  readonly rows: SearchEvalRow[] = [];
  readonly folds: number[];

  constructor(
    private readonly d: SearchDataset,
    private readonly log: (m: string) => void,
  ) {
    this.folds = [...new Set(d.queries.map((q) => d.folds.get(q.qid) as number))].sort((a, b) => a - b);
  }

  /** Adds a row from per-query rankings (item ids, best first), in query order. */
  add(method: string, labels: string, ranked: ReadonlyArray<readonly string[]>): SearchEvalRow {
    const sums = new Map<number, { s: number; n: number }>();
    let total = 0;
    this.d.queries.forEach((q, k) => {
      const f = this.d.folds.get(q.qid) as number;
      const n = ndcgAt(ranked[k] as string[], this.d.qrels.get(q.qid) ?? new Map<string, number>(), 10);
      const acc = sums.get(f) ?? { s: 0, n: 0 };
      sums.set(f, { s: acc.s + n, n: acc.n + 1 });
      total += n;
    });
    const perFold = this.folds.map((f) => {
      const acc = sums.get(f) as { s: number; n: number };
      return acc.s / acc.n;
    });
    const row = { method, labels, ndcg10: total / Math.max(1, this.d.queries.length), perFold };
    this.rows.push(row);
    this.log(`${method}: NDCG@10 ${row.ndcg10.toFixed(4)}`);
    return row;
  }
}

function rankAll(ids: readonly string[], scores: Float32Array, k = PREDICTION_DEPTH): string[] {
  return topDocs(scores, k)
    .filter((i) => (scores[i] as number) > 0)
    .map((i) => ids[i] as string);
}

/** Orders a candidate set by a scorer (what ranking's Search does before its business rules). */
function rankCandidates(
  engine: SearchEngine,
  docs: readonly number[],
  rows: readonly Float32Array[],
  scorer: SearchScorer,
): string[] {
  const s = Float32Array.from(rows, (r) => scorer.score(r));
  return topDocs(s, Math.min(PREDICTION_DEPTH, s.length)).map((i) => engine.ids[docs[i] as number] as string);
}

export async function evaluateSearch(opts: SearchEvalOptions): Promise<SearchEvalResult> {
  const started = performance.now();
  const progress = new Progress();
  const log = (m: string) => progress.log(m);
  const d = readSearchDataset(opts.dataset);
  const judged = d.queries.filter((q) => (d.qrels.get(q.qid)?.size ?? 0) > 0).length;
  log(
    `data set ${opts.dataset}: ${d.docs.length} items, ${d.queries.length} queries (${judged} judged), ${new Set(d.folds.values()).size} folds`,
  );
  const board = new Scoreboard(d, log);
  const texts = d.queries.map((q) => q.text);

  // 1. Lexical ladder: the reference BM25, then each query-understanding step on top of the previous one.
  const concat = d.docs.map((x) => ({
    id: x.id,
    title: [x.title, x.description, x.brand, x.category].filter(Boolean).join(' '),
  }));
  const reference = new FieldIndex(concat, PLAIN_ANALYZER);
  board.add(
    'BM25 (k1 1.2, b 0.75, all text, plain tokens)',
    NO_LABELS,
    texts.map((t) => rankAll(reference.ids, reference.bm25(termWeights(t, PLAIN_ANALYZER), 'title'))),
  );
  const analyzed = new FieldIndex(concat);
  board.add(
    '+ analyzer (plurals, units, model numbers, CJK n-grams)',
    NO_LABELS,
    texts.map((t) => rankAll(analyzed.ids, analyzed.bm25(termWeights(t), 'title'))),
  );
  const t0 = performance.now();
  // The catalog and its search engine as ranking builds them; every engine row below queries it.
  const servedSearch = new ServedSearch(d.docs);
  const engine = servedSearch.catalog.engine;
  log(`search engine over ${engine.size} items built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const p = engine.config.bm25f;
  board.add(
    '+ fields (BM25F, title 3 : description 1)',
    NO_LABELS,
    texts.map((t) => rankAll(engine.ids, engine.index.bm25f(termWeights(t), p))),
  );
  const understood = texts.map((t) => engine.understand(t));
  const corrected = understood.filter((u) => u.corrections.length > 0);
  log(
    `spelling: ${corrected.length} queries corrected (${corrected
      .slice(0, 8)
      .flatMap((u) => u.corrections.map((c) => `${c.from} -> ${c.to.join(' ')}`))
      .join(', ')})`,
  );
  board.add(
    '+ spelling from the catalog vocabulary',
    NO_LABELS,
    understood.map((u) => rankAll(engine.ids, engine.index.bm25f(u.terms, p))),
  );
  board.add(
    '+ RM3 expansion from the catalog',
    NO_LABELS,
    understood.map((u) => rankAll(engine.ids, engine.index.bm25f(u.expanded, p))),
  );
  // Co-click synonyms: the other folds' judged items (gain >= 2) stand in for clicks.
  const docById = new Map(d.docs.map((x) => [x.id, x]));
  const synonymsFor = new Map<number, CoClickSynonyms>();
  for (const f of board.folds) {
    const feedback = d.queries
      .filter((q) => d.folds.get(q.qid) !== f)
      .flatMap((q) =>
        [...(d.qrels.get(q.qid) ?? [])]
          .filter(([, g]) => g >= 2)
          .map(([id, g]) => ({ query: q.text, title: docById.get(id)?.title ?? '', gain: g - 1 })),
      );
    synonymsFor.set(f, new CoClickSynonyms(feedback));
  }
  if (judged > 0)
    board.add(
      '+ spelling + co-click synonyms (other folds judged items as clicks), no RM3',
      CV_LABELS,
      d.queries.map((q, k) => {
        const terms = (understood[k] as QueryUnderstanding).terms;
        const related =
          synonymsFor.get(d.folds.get(q.qid) as number)?.expand(terms.keys()) ?? new Map<string, number>();
        return rankAll(engine.ids, engine.index.bm25f(withRelated(terms, related), p));
      }),
    );

  // 2. The text encoder, trained on the catalog's own pseudo-queries (no labels).
  const { backend } = await initBackend({ log });
  const pairs = encoderPairs(d.docs, { perItem: opts.encoder.pairsPerItem, seed: opts.seed });
  log(`text encoder: ${pairs.length} (pseudo-query, item) pairs from the catalog; backend ${backend}`);
  const encoder = new TextEncoder2T({
    dim: opts.encoder.dim,
    epochs: opts.encoder.epochs,
    batchSize: opts.encoder.batchSize,
    seed: opts.seed,
  });
  await encoder.fit(pairs, {
    onEpoch: (e, loss, s) => log(`encoder epoch ${e}: in-batch softmax loss ${loss.toFixed(4)} (${s.toFixed(0)} s)`),
  });
  const { retrieve } = encoderRetriever(encoder, d.docs);
  const semantic = await retrieve(texts);
  board.add(
    'text encoder alone (trained on catalog pseudo-queries)',
    NO_LABELS,
    semantic.map((m) => [...m.keys()].slice(0, PREDICTION_DEPTH)),
  );

  // 3. Candidates and features once per query; scorers differ only in how they weigh the rows.
  const sets = texts.map((t, k) => engine.candidates(t, { semantic: semantic[k] }));
  const byScorer = (scorer: SearchScorer) => sets.map((s) => rankCandidates(engine, s.docs, s.rows, scorer));
  board.add('hybrid, fixed weights (served before any model is trained)', NO_LABELS, byScorer(FALLBACK_SEARCH_SCORER));

  const pseudo = pseudoQueries(d.docs, opts.pseudoQueries, mulberry32(opts.seed + 17));
  const pseudoLists = await rankingLists(engine, pseudoLabelled(engine, pseudo), retrieve);
  const zeroShot = (frozen: readonly SearchFeature[] = []) =>
    fitDefaultScorer(pseudoLists, { frozen: [...OFFLINE_FROZEN, ...frozen] });
  const defaultScorer = zeroShot();
  // The default row goes through exactly what ranking's Search runs: RankingPipeline.search over the
  // catalog's engine, the encoder's neighbours and the exported ONNX scorer, then filters and rules.
  const served = await onnxScorer(exportSearchScorer(defaultScorer), 'eval');
  servedSearch.use(served, retrieve);
  const servedRanked: string[][] = [];
  for (const t of texts) servedRanked.push(await servedSearch.search(t, PREDICTION_DEPTH));
  servedSearch.use(undefined, undefined);
  await served.release();
  const defaultRow = board.add(
    '**hybrid, learned from the catalog (default; what Search serves)**',
    NO_LABELS,
    servedRanked,
  );
  const ablations: Array<[string, SearchFeature[]]> = [
    ['default without category intent', ['intent', 'head_match']],
    ['default without the encoder', ['semantic']],
    ['default without RM3', ['rm3_norm']],
    ['default without title coverage and phrase', ['title_coverage', 'all_in_title', 'title_phrase']],
  ];
  for (const [name, frozen] of ablations) board.add(name, NO_LABELS, byScorer(zeroShot(frozen)));

  // 4. Learned from judgements, cross-validated over the folds.
  let predictions: string[][] = servedRanked;
  let predictionsFrom = defaultRow.method;
  if (judged > 0) {
    const lists: RankingList[] = sets.map((s, k) => ({
      rows: s.rows,
      labels: s.docs.map(
        (doc) => d.qrels.get((d.queries[k] as { qid: string }).qid)?.get(engine.ids[doc] as string) ?? 0,
      ),
    }));
    const foldOf = d.queries.map((q) => d.folds.get(q.qid) as number);
    const learners: Record<string, (train: RankingList[]) => SearchScorer> = {
      linear: (train) => fitLinear(train, { frozen: OFFLINE_FROZEN }),
      trees: (train) => fitTrees(train, { frozen: OFFLINE_FROZEN, seed: opts.seed }),
    };
    const crossValidated = (learn: (train: RankingList[]) => SearchScorer, exclude?: number): Map<number, string[]> => {
      const out = new Map<number, string[]>();
      for (const f of board.folds) {
        if (f === exclude) continue;
        const train = lists.filter((_, k) => foldOf[k] !== f && foldOf[k] !== exclude);
        const scorer = learn(train);
        sets.forEach((s, k) => {
          if (foldOf[k] === f) out.set(k, rankCandidates(engine, s.docs, s.rows, scorer));
        });
      }
      return out;
    };
    const learnedRows: Record<string, string[][]> = {};
    for (const [name, learn] of Object.entries(learners)) {
      const preds = crossValidated(learn);
      learnedRows[name] = sets.map((_, k) => preds.get(k) ?? []);
      board.add(`learned ${name} (LTR on judgements)`, CV_LABELS, learnedRows[name]);
    }
    // The learner for each fold is chosen by inner cross-validation on the other folds only; the
    // default (no judgements) is one of the choices.
    learners['default'] = () => defaultScorer;
    learnedRows['default'] = byScorer(defaultScorer);
    const selected: string[][] = sets.map(() => []);
    const choices: string[] = [];
    for (const f of board.folds) {
      let best = '';
      let bestScore = -1;
      for (const [name, learn] of Object.entries(learners)) {
        const inner = crossValidated(learn, f);
        let s = 0;
        for (const [k, ranked] of inner)
          s += ndcgAt(ranked, d.qrels.get((d.queries[k] as { qid: string }).qid) ?? new Map(), 10);
        if (s / Math.max(1, inner.size) > bestScore) {
          bestScore = s / Math.max(1, inner.size);
          best = name;
        }
      }
      choices.push(`fold ${f}: ${best}`);
      sets.forEach((_, k) => {
        if (foldOf[k] === f) selected[k] = (learnedRows[best] as string[][])[k] as string[];
      });
    }
    const sel = board.add(
      `**learned, learner chosen on the other folds** (${choices.join(', ')})`,
      CV_LABELS,
      selected,
    );
    predictions = selected;
    predictionsFrom = sel.method;
  }
  encoder.dispose();

  if (opts.predictionsOut) {
    mkdirSync(dirname(opts.predictionsOut), { recursive: true });
    writeFileSync(
      opts.predictionsOut,
      d.queries
        .map((q, k) => JSON.stringify({ qid: q.qid, items: (predictions[k] ?? []).slice(0, PREDICTION_DEPTH) }))
        .join('\n') + '\n',
    );
    log(`predictions (${predictionsFrom}) -> ${opts.predictionsOut}`);
  }
  const wallSeconds = (performance.now() - started) / 1000;
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(
    opts.out,
    JSON.stringify(
      {
        dataset: opts.dataset,
        protocol: 'full catalog, NDCG@10 linear gain, mean over query folds',
        items: d.docs.length,
        queries: d.queries.length,
        folds: board.folds,
        rows: board.rows,
        defaultScorer: defaultScorer.toJSON(),
        encoder: encoder.cfg,
        pseudoQueries: opts.pseudoQueries,
        wallSeconds,
      },
      null,
      2,
    ),
  );
  const summary = [
    `${opts.dataset}: ${d.queries.length} queries over ${d.docs.length} items (full catalog); NDCG@10 over all queries, each scored by what was fitted without its fold (${board.folds.length} query folds)`,
    table(
      board.rows.map((r) => ({
        method: r.method,
        labels: r.labels,
        'NDCG@10': r.ndcg10,
        'mean of folds': r.perFold.reduce((a, x) => a + x, 0) / r.perFold.length,
        'fold min..max': `${Math.min(...r.perFold).toFixed(3)}..${Math.max(...r.perFold).toFixed(3)}`,
      })),
    ),
    `whole command ${wallSeconds.toFixed(0)} s`,
  ].join('\n');
  return { rows: board.rows, folds: board.folds, summary, wallSeconds };
}
