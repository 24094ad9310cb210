import {
  FALLBACK_SEARCH_SCORER,
  localScorer,
  SEARCH_FEATURES,
  SEMANTIC_NEIGHBOURS,
  type CandidateOptions,
  type ItemSignals,
  type SearchEngine,
  type SearchResult,
} from '@aisle/ml';
import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { ItemStatsPort, Retrieved, SearchModelPort, TextRetrievalPort } from '../ports';

/** Semantic retrieval of a text; nothing without a text model port. */
export async function retrieveByText(
  ctx: RequestContext,
  port: TextRetrievalPort | undefined,
  text: string,
  k: number,
  exclude: readonly string[],
): Promise<Retrieved | undefined> {
  if (!port || !text) return undefined;
  return ctx.call(port.dependency ?? 'text_retrieval', (b) => port.byText(text, k, exclude, b));
}

export function addSemanticCandidates(ctx: RequestContext, out: CandidateSet, got: Retrieved | undefined): void {
  if (!got) return;
  ctx.versions.push(`text_encoder:${got.version}`);
  for (const n of got.items) {
    const c = out.add(n.itemId, 'semantic');
    if (c) c.textScore = n.score;
  }
}

/**
 * The search surface's candidate stage. The default (`EngineSearchStage`) is the one `aisle eval
 * --model search` measures; a different stage can be plugged into the pipeline
 * (`PipelineOptions.searchStage`).
 */
export interface SearchStage {
  candidates(ctx: RequestContext, query: string, out: CandidateSet): Promise<void>;
}

const BM25F_NORM = SEARCH_FEATURES.indexOf('bm25f_norm');
const SEMANTIC = SEARCH_FEATURES.indexOf('semantic');

/** Semantic neighbours asked of the text encoder per query (as many as the evaluation gives the engine). */
export const SEMANTIC_CANDIDATES = SEMANTIC_NEIGHBOURS;

/**
 * The search scorer served before the trainer has published any `search_ranker`: fixed weights over the
 * engine's catalog-only features (the "hybrid, fixed weights" row of `aisle eval --model search`).
 */
export const CATALOG_SEARCH_MODEL: SearchModelPort = localScorer(FALLBACK_SEARCH_SCORER, 'catalog');

/** Item statistics as the search features read them (popularity and CTR; production only). */
export function searchSignals(stats: ItemStatsPort | undefined): CandidateOptions['signals'] {
  if (!stats) return undefined;
  return (itemId): ItemSignals | undefined => {
    const s = stats.stats(itemId);
    return s && { popularity: s.popularity7d, ctr: s.ctr };
  };
}

/**
 * Search over libs/ml's `SearchEngine` (query analysis, spelling from the catalog vocabulary, RM3 and
 * co-click expansion, category intent, BM25F candidates and their feature rows), with the text encoder's
 * neighbours as the semantic feature and candidates, scored by the search model (`search_ranker`, or
 * `CATALOG_SEARCH_MODEL` until one is published). Every candidate carries its score and each feature's
 * part of it; filters, personalization and rules come after, in the pipeline.
 */
export class EngineSearchStage implements SearchStage {
  private model: SearchModelPort | undefined;

  constructor(
    private readonly engine: SearchEngine | undefined,
    private readonly text: TextRetrievalPort | undefined,
    private readonly signals: CandidateOptions['signals'],
    model?: SearchModelPort,
  ) {
    this.model = model;
  }

  setModel(model: SearchModelPort | undefined): void {
    this.model = model;
  }

  /** The version serving now ('catalog' before a search model is published). */
  get modelVersion(): string {
    return (this.model ?? CATALOG_SEARCH_MODEL).version;
  }

  async candidates(ctx: RequestContext, query: string, out: CandidateSet): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    const got = await retrieveByText(ctx, this.text, query, SEMANTIC_CANDIDATES, []);
    if (got) ctx.versions.push(`text_encoder:${got.version}`);
    const semantic = got && new Map(got.items.map((n) => [n.itemId, n.score]));
    const model = this.model ?? CATALOG_SEARCH_MODEL;
    const run = (m: SearchModelPort) =>
      engine.search(query, m, { semantic, signals: this.signals, synonyms: m.synonyms });
    let result: SearchResult;
    try {
      result = await run(model);
    } catch (err) {
      if (model === CATALOG_SEARCH_MODEL) throw err;
      ctx.degrade('search_ranker', err);
      result = await run(CATALOG_SEARCH_MODEL);
    }
    ctx.versions.push(`search:${result.scorer}`);
    const terms = [...result.understanding.terms.keys()];
    for (const hit of result.hits) {
      const f = hit.features;
      const lexical = f[BM25F_NORM] as number;
      const similarity = f[SEMANTIC] as number;
      const c = out.add(hit.itemId, lexical > 0 || similarity === 0 ? 'bm25' : 'semantic');
      if (!c) continue;
      if (lexical > 0 && similarity !== 0) c.sources.push('semantic');
      c.search = { score: hit.score, parts: hit.parts, features: f };
      if (lexical > 0) {
        c.lexical = lexical;
        const slot = engine.index.slot(hit.itemId);
        const has = slot === undefined ? undefined : engine.index.docTerms[slot];
        c.terms = terms.filter((t) => has?.has(t));
      }
      if (similarity !== 0) c.textScore = semantic?.get(hit.itemId) ?? similarity;
    }
  }
}
