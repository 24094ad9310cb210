import type { BatchScorer, CoClickSynonyms } from '@aisle/ml';

/**
 * What the ranking pipeline needs from the world. The ranking service implements these over gRPC and
 * NATS (with caches); the trainer's evaluator implements them in memory (see `memory.ts`), so that both
 * run exactly the same pipeline.
 */

export interface Neighbor {
  itemId: string;
  score: number;
}

export interface Interaction {
  itemId: string;
  type: string;
  /** Epoch milliseconds. */
  at: number;
}

/** What ranking knows about a user at request time. */
export interface UserProfile {
  userId: string;
  /** Item interactions, oldest first. */
  recent: readonly Interaction[];
  purchased: ReadonlySet<string>;
  /** Highest first. */
  affinity: ReadonlyArray<{ category: string; score: number }>;
  price: { mean: number; std: number } | undefined;
  /** Recent search queries, most recent last. */
  queries: readonly string[];
}

/** A user with the co-visits of their most recent distinct items: what one round trip brings. */
export interface UserContext {
  /** Undefined for a user never seen. */
  user: UserProfile | undefined;
  /** Co-visited items per recent item id (the most recent `coVisitItems` distinct items at most). */
  coVisits: ReadonlyMap<string, readonly Neighbor[]>;
}

/** Per-item interaction statistics. */
export interface ItemStats {
  popularity7d: number;
  ctr: number;
  conversionRate: number;
}

/**
 * The time a dependency call may take: an absolute deadline (epoch ms) to hand to the transport, and a
 * signal aborted when the request stops waiting (its dependency deadline passed, or the caller left).
 */
export interface CallBudget {
  readonly deadline: number;
  readonly signal: AbortSignal;
}

/** Each port may name the dependency behind it, for `degraded_reasons` ("feature: ..."). */
export interface Named {
  readonly dependency?: string;
}

export interface UserContextPort extends Named {
  /** An answer already in memory (a cache), without a call; the pipeline asks this first. */
  peek?(userId: string): UserContext | undefined;
  userContext(
    userId: string,
    opts: { coVisitItems: number; coVisitLimit: number },
    budget: CallBudget,
  ): Promise<UserContext>;
}

export interface CoVisitationPort extends Named {
  /** Lists of every given item if all are in memory (a cache), without a call; asked first. */
  peek?(itemIds: readonly string[], limit: number): ReadonlyMap<string, readonly Neighbor[]> | undefined;
  /** Co-visited items of each given item (missing ids: no entry), most first, at most `limit` each. */
  coVisited(
    itemIds: readonly string[],
    limit: number,
    budget: CallBudget,
  ): Promise<ReadonlyMap<string, readonly Neighbor[]>>;
}

/**
 * In-memory item statistics (no request waits on them): the service refreshes them from the feature
 * service in the background. `staleReason` says why they may be out of date (the refresh keeps
 * failing); answers that used them are then flagged degraded.
 */
export interface ItemStatsPort extends Named {
  /** Statistics of one item; undefined for items without any (the features' priors apply). */
  stats(itemId: string): ItemStats | undefined;
  staleReason?(): string | undefined;
}

export interface PopularityPort extends Named {
  /** Most popular items, within a category path prefix ('' = all), most first. In memory. */
  popular(category: string, limit: number): readonly Neighbor[];
  staleReason?(): string | undefined;
}

export interface Retrieved {
  items: readonly Neighbor[];
  /** The model version that answered (reported in `model_version`). */
  version: string;
}

/** Scores of given items, each with its 0-based rank among every item the model knows. */
export interface ScoredItems extends Retrieved {
  /** Parallel to `items`. */
  ranks: readonly number[];
}

/** Next-item retrieval from a user's sequence (SASRec item embeddings). */
export interface SequenceRetrievalPort extends Named {
  /** An answer already in memory (a cache), without a call; asked first. */
  peek?(history: readonly string[], k: number, exclude: readonly string[]): Retrieved | undefined;
  bySequence(history: readonly string[], k: number, exclude: readonly string[], budget: CallBudget): Promise<Retrieved>;
  /**
   * Scores exactly these items (Rank). Optional: without it Rank takes the items that a top-k
   * retrieval happens to return, and the others get no sequence score.
   */
  scoreItems?(history: readonly string[], itemIds: readonly string[], budget: CallBudget): Promise<ScoredItems>;
}

/**
 * The session model: what comes next in an anonymous session (no user history), from the items seen in
 * it. The same scorer that was chosen on validation sessions (libs/ml `ServingSessionModel`).
 */
export interface SessionModelPort extends Named {
  readonly version: string;
  next(sessionItemIds: readonly string[], k: number, budget: CallBudget): Promise<Retrieved>;
}

/** Semantic retrieval from a text (the text encoder). */
export interface TextRetrievalPort extends Named {
  byText(text: string, k: number, exclude: readonly string[], budget: CallBudget): Promise<Retrieved>;
}

/** Churn risk of a user (probability of going quiet), for rules that treat users at risk. */
export interface ChurnRiskPort extends Named {
  /**
   * The churn model version every answer comes from, when the port names one (an experiment arm's pin;
   * the port refuses answers from another): reported in `model_version` as `churn:<version>`.
   */
  readonly version?: string | undefined;
  /** Undefined for a user never scored. */
  risk(userId: string, budget: CallBudget): Promise<number | undefined>;
}

/** The learned ranker: scores `rows` rows of a row-major [rows, RANKER_DIM] matrix of RANKER_FEATURES. */
export interface RankerPort {
  readonly version: string;
  score(features: Float32Array, rows: number): Promise<Float32Array>;
}

/** What ranking keeps of a catalog item: what filters, rules, features and reasons read. */
export interface RankingItem {
  readonly itemId: string;
  readonly title: string;
  readonly category: string;
  readonly brand: string;
  readonly price: number;
  readonly inStock: boolean;
}

export interface CatalogPort {
  get(itemId: string): RankingItem | undefined;
}

/**
 * The search model: scores the candidate feature rows `SearchEngine` builds (SEARCH_FEATURES) and splits
 * each score into per-feature parts (for `explain`); published as `search_ranker` with the co-click
 * synonyms Search expands queries with.
 */
export interface SearchModelPort extends BatchScorer {
  readonly synonyms?: CoClickSynonyms | undefined;
}

export type Surface = 'recommend' | 'search' | 'rank' | 'similar_items';

/** How one arm's ranking went for a request in an experiment. */
export interface ArmRun {
  arm: string;
  latencyMs: number;
  degraded: boolean;
  /** The arm's ranking failed and the response fell back to the production ranking. */
  failed: boolean;
  error: string;
}

/** The experiment a response belonged to (see `aisle.ranking.v1.Exposure`). */
export interface ServedExposure {
  experimentId: string;
  /** A/B: the unit's arm; interleaving: ''. */
  arm: string;
  interleaved: boolean;
  runs: ArmRun[];
}

/** One served response: the impression published on `aisle.ranking.v1.served`. */
export interface ServedEvent {
  requestId: string;
  tenant: string;
  userId: string;
  sessionId?: string | undefined;
  surface: Surface;
  query: string;
  /** `team`: interleaving, the arm that contributed the item. */
  items: Array<{ itemId: string; position: number; score: number; team?: string | undefined }>;
  modelVersion: string;
  degraded: boolean;
  servedAt: number;
  experiment?: ServedExposure | undefined;
}

export interface ImpressionSink {
  served(e: ServedEvent): void;
}
