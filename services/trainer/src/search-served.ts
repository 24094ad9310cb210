import type { SearchDoc, SearchEngineConfig, SemanticRetriever } from '@aisle/ml';
import {
  Catalog,
  ItemStatsTable,
  MemoryCoVisitation,
  MemoryUserContext,
  NO_FILTERS,
  RankingPipeline,
  textRetrievalFrom,
  type SearchModelPort,
} from '@aisle/ranking-core';

/** Offline Search did not answer in full (a degraded answer would not measure what is served). */
export class ServedSearchError extends Error {
  override readonly name = 'ServedSearchError';
}

/** Offline, nothing is late: the pipeline's deadline is only a guard against a hung evaluation. */
const EVAL_DEADLINES = { deadlineMs: 600_000, dependencyTimeoutMs: 600_000 };

/**
 * Ranking's Search run in-process over a data set's catalog, through the very code the ranking service
 * serves with (`RankingPipeline.search`: the catalog's search engine, the text encoder's neighbours, the
 * search model, filters and rules), for an anonymous shopper. The catalog and its engine are built as the
 * service builds them (`Catalog.upsert`), so the other rows of an evaluation can use `catalog.engine`.
 */
export class ServedSearch {
  readonly catalog: Catalog;
  readonly pipeline: RankingPipeline;
  private semantic: SemanticRetriever | undefined;

  /** `engine`: settings other than the search engine's defaults (ablations only; ranking serves the defaults). */
  constructor(docs: readonly SearchDoc[], engine: Partial<SearchEngineConfig> = {}) {
    this.catalog = new Catalog({}, engine);
    const refused = this.catalog.upsert(
      docs.map((d) => ({
        itemId: d.id,
        title: d.title,
        description: d.description,
        category: d.category ?? '',
        brand: d.brand ?? '',
        price: 0,
        inStock: true,
      })),
    ).refused;
    if (refused > 0) throw new ServedSearchError(`catalog of ${docs.length} items is over ranking's limit`);
    const coVisitation = new MemoryCoVisitation(new Map());
    const stats = new ItemStatsTable(this.catalog);
    this.pipeline = new RankingPipeline(
      {
        catalog: this.catalog,
        search: this.catalog.engine,
        userContext: new MemoryUserContext(new Map(), coVisitation),
        coVisitation,
        itemStats: stats,
        popularity: stats,
        textRetrieval: textRetrievalFrom(async (text, k) => {
          const [neighbours] = this.semantic ? await this.semantic([text]) : [];
          return {
            items: [...(neighbours ?? [])].slice(0, k).map(([itemId, score]) => ({ itemId, score })),
            version: 'eval',
          };
        }),
      },
      { tenant: 'eval', deadlines: EVAL_DEADLINES },
    );
  }

  /** The search model and the text encoder's retriever Search uses from now on. */
  use(model: SearchModelPort | undefined, semantic: SemanticRetriever | undefined): void {
    this.pipeline.setSearchModel(model);
    this.semantic = semantic;
  }

  /** Item ids Search answers for `query`, best first (at most `limit`, up to 200). */
  async search(query: string, limit: number): Promise<string[]> {
    const r = await this.pipeline.search({ query, userId: '', limit, filters: NO_FILTERS, explain: false });
    if (r.degraded) throw new ServedSearchError(`search "${query}" degraded offline: ${r.degradedReasons.join('; ')}`);
    return r.items.map((i) => i.itemId);
  }
}
