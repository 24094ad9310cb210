import { RANKER_FEATURES, SEARCH_FEATURES, type SearchEngine } from '@aisle/ml';
import { randomUUID } from 'node:crypto';
import { CandidateSet, type Candidate } from './candidates';
import { DEFAULT_DEADLINE_POLICY, RequestContext, type DeadlinePolicy, type RequestInit } from './context';
import { occlusionContributions } from './explain';
import { FeatureMatrixPool, featurize, namedFeatures, userSignals } from './featurize';
import { passesFilters } from './filters';
import type {
  CatalogPort,
  ChurnRiskPort,
  CoVisitationPort,
  ImpressionSink,
  ItemStatsPort,
  Neighbor,
  PopularityPort,
  RankerPort,
  RankingItem,
  SearchModelPort,
  SequenceRetrievalPort,
  SessionModelPort,
  Surface,
  TextRetrievalPort,
  UserContextPort,
} from './ports';
import { reasonsFor } from './reasons';
import {
  NO_FILTERS,
  validateRank,
  validateRecommend,
  validateSearch,
  validateSimilarItems,
  type RankingResult,
  type RankRequest,
  type RecommendRequest,
  type SearchRequest,
  type SimilarItemsRequest,
} from './requests';
import { applyRetention, applyRules, SEARCH_MAX_PER_CATEGORY, type RetentionRule, type Scored } from './rules';
import { personalization, scoreRows } from './score';
import { servedEvent } from './served';
import {
  addCoVisitCandidates,
  completedSeedLists,
  COVISIT_PER_SEED,
  COVISIT_RANK,
  USER_CONTEXT_OPTIONS,
  coVisitsOf,
  recentDistinct,
} from './sources/co-visitation';
import { addPopularCandidates, popularIn } from './sources/popularity';
import {
  addSemanticCandidates,
  EngineSearchStage,
  retrieveByText,
  searchSignals,
  type SearchStage,
} from './sources/search';
import { addSequenceCandidates, retrieveTopBySequence, scoreBySequence } from './sources/sequence';
import { addSessionCandidates, retrieveBySession } from './sources/session';

/** The ports a pipeline runs over (see ports.ts); the optional ones degrade gracefully when absent. */
export interface PipelinePorts {
  catalog: CatalogPort;
  userContext: UserContextPort;
  coVisitation: CoVisitationPort;
  itemStats: ItemStatsPort;
  popularity: PopularityPort;
  sequenceRetrieval?: SequenceRetrievalPort | undefined;
  textRetrieval?: TextRetrievalPort | undefined;
  /** The search engine Search queries (the `Catalog`'s `engine`, kept up to date with it). */
  search?: SearchEngine | undefined;
  /** The search model (`search_ranker`); the catalog-only default serves without one. `setSearchModel`. */
  searchModel?: SearchModelPort | undefined;
  /** Churn risk, read for the retention rule (only when `retention` is set). */
  churnRisk?: ChurnRiskPort | undefined;
  /** The learned ranker; the heuristic serves without one. Also settable later with `setRanker`. */
  ranker?: RankerPort | undefined;
  /** Orders anonymous sessions (Recommend with session items and no known user); `setSessionModel`. */
  sessionModel?: SessionModelPort | undefined;
  impressions?: ImpressionSink | undefined;
}

export interface PipelineOptions {
  tenant: string;
  /** Diversity: most items of one category among the first ten of Recommend and SimilarItems (not Search). */
  maxPerCategory?: number;
  deadlines?: Partial<DeadlinePolicy>;
  /** Replaces the default search stage (`EngineSearchStage` over `search` and the text encoder). */
  searchStage?: SearchStage;
  /** The retention rule (an experiment arm's treatment): needs the `churnRisk` port. */
  retention?: RetentionRule | undefined;
  clock?: () => number;
  newRequestId?: () => string;
}

/** Candidates the session model proposes for an anonymous session (at least; 3 x limit when larger). */
export const SESSION_CANDIDATES = 100;
/** `model_version` part saying that the session model's scores ordered the answer. */
export const SESSION_ORDER_VERSION = 'order:session';

/**
 * Candidates sequence retrieval proposes per surface. Recommend takes the top of Rank's retrieval (one
 * retrieval per history, cached and warmed, serves both) unless it has exclusions.
 */
export const SEQUENCE_CANDIDATES = { recommend: 100, rank: 300 } as const;
export const SIMILAR_COVISITS = 50;
export const SIMILAR_SEMANTIC = 50;
/** Most purchased items excluded from retrieval with `exclude_purchased`. */
const MAX_RETRIEVAL_EXCLUDES = 500;

interface FinishOptions {
  /** Rank: keep every candidate (unknown items too), no filters or rules, order by score. */
  keepAll?: boolean;
  /** Search: the search model's score orders; with a known user the ranker's score nudges it. */
  search?: { personalize: boolean };
  excluded?: ReadonlySet<string>;
  /** Anonymous sessions: the session model's scores order the candidates (no ranker). */
  bySessionScore?: boolean;
}

/** Explain: the search features the search model scored, named `search.<feature>`. */
function searchFeatures(c: Candidate): Record<string, number> {
  const out: Record<string, number> = {};
  const f = c.search?.features;
  if (f) SEARCH_FEATURES.forEach((name, j) => (out[`search.${name}`] = f[j] as number));
  return out;
}

/**
 * Explain: each part of a Search score (before rules): the search model's per-feature parts
 * (`search.<feature>`), its constant (`search.bias`) and, with a known user, `personalization`; they
 * sum to the score.
 */
function searchContributions(c: Candidate, nudge: number): Record<string, number> {
  if (!c.search) return {};
  const out: Record<string, number> = {};
  let sum = 0;
  for (const [name, v] of Object.entries(c.search.parts)) {
    out[`search.${name}`] = v;
    sum += v;
  }
  out['search.bias'] = c.search.score - sum;
  if (nudge !== 0) out['personalization'] = nudge;
  return out;
}

/**
 * The ranking pipeline behind Recommend, Search, Rank and SimilarItems: one request context ->
 * user context -> candidate sources of the surface -> filters -> features -> ranker ->
 * rules -> reasons -> impression. Dependencies that fail or are late are skipped and named in
 * `degradedReasons`; the answer always comes by the request's deadline.
 */
export class RankingPipeline {
  private ranker: RankerPort | undefined;
  private sessionModel: SessionModelPort | undefined;
  private readonly policy: DeadlinePolicy;
  private readonly clock: () => number;
  private readonly newRequestId: () => string;
  private readonly searchStage: SearchStage;
  private readonly engineStage: EngineSearchStage | undefined;
  private readonly matrices = new FeatureMatrixPool();
  private maxPerCategory: number;
  private retention: RetentionRule | undefined;

  constructor(
    private readonly ports: PipelinePorts,
    private readonly opts: PipelineOptions,
  ) {
    this.ranker = ports.ranker;
    this.sessionModel = ports.sessionModel;
    this.policy = { ...DEFAULT_DEADLINE_POLICY, ...opts.deadlines };
    this.clock = opts.clock ?? (() => Date.now());
    this.newRequestId = opts.newRequestId ?? randomUUID;
    this.engineStage = opts.searchStage
      ? undefined
      : new EngineSearchStage(ports.search, ports.textRetrieval, searchSignals(ports.itemStats), ports.searchModel);
    this.searchStage = opts.searchStage ?? (this.engineStage as EngineSearchStage);
    this.maxPerCategory = opts.maxPerCategory ?? 3;
    this.retention = opts.retention;
  }

  /** Changes the business rules at run time (a tenant's settings changed): the next request applies them. */
  setRules(rules: { maxPerCategory: number; retention: RetentionRule | undefined }): void {
    this.maxPerCategory = rules.maxPerCategory;
    this.retention = rules.retention;
  }

  setRanker(model: RankerPort | undefined): void {
    this.ranker = model;
  }

  /** Hot-swaps the search model (undefined: back to the catalog-only default). */
  setSearchModel(model: SearchModelPort | undefined): void {
    this.engineStage?.setModel(model);
  }

  get searchModelVersion(): string | undefined {
    return this.engineStage?.modelVersion;
  }

  setSessionModel(model: SessionModelPort | undefined): void {
    this.sessionModel = model;
  }

  get sessionModelVersion(): string | undefined {
    return this.sessionModel?.version;
  }

  get rankerVersion(): string | undefined {
    return this.ranker?.version;
  }

  private context(surface: Surface, init: Omit<RequestInit, 'tenant' | 'surface' | 'requestId'>): RequestContext {
    return new RequestContext(
      { ...init, tenant: this.opts.tenant, surface, requestId: this.newRequestId() },
      this.policy,
      this.clock,
    );
  }

  /**
   * Loads the user and the co-visits of their recent items (one call); unknown users stay undefined. With
   * the retention rule, the user's churn risk comes in parallel.
   */
  private async loadUser(ctx: RequestContext): Promise<void> {
    if (!ctx.userId) return;
    const port = this.ports.userContext;
    const churn = this.retention ? this.ports.churnRisk : undefined;
    const cached = port.peek?.(ctx.userId);
    const [got, risk] = await Promise.all([
      cached ??
        ctx.call(port.dependency ?? 'user_context', (b) => port.userContext(ctx.userId, USER_CONTEXT_OPTIONS, b)),
      churn ? ctx.call(churn.dependency ?? 'churn', (b) => churn.risk(ctx.userId, b)) : undefined,
    ]);
    ctx.churnRisk = risk;
    if (churn?.version && risk !== undefined) ctx.versions.push(`churn:${churn.version}`);
    ctx.user = got?.user;
    ctx.coVisits = got?.coVisits ?? new Map();
    ctx.history = ctx.user ? ctx.user.recent.map((r) => r.itemId) : [];
  }

  private async run(ctx: RequestContext, body: () => Promise<RankingResult>): Promise<RankingResult> {
    try {
      return await body();
    } finally {
      ctx.close();
    }
  }

  async recommend(req: RecommendRequest): Promise<RankingResult> {
    const limit = validateRecommend(req);
    const ctx = this.context('recommend', { ...req, query: '', limit });
    return this.run(ctx, async () => {
      const { popularity } = this.ports;
      await this.loadUser(ctx);
      const user = ctx.user;
      if (!user && req.sessionItemIds.length > 0 && this.sessionModel) {
        // Anonymous: the session model chosen on validation sessions orders what is served; filters
        // and rules still apply. When it fails or is late, the user-less sources below answer.
        const k = Math.max(SESSION_CANDIDATES, 3 * limit);
        const got = await retrieveBySession(ctx, this.sessionModel, req.sessionItemIds, k);
        if (got) {
          const cands = new CandidateSet();
          addSessionCandidates(ctx, cands, got);
          return this.finish(ctx, cands, { bySessionScore: true });
        }
      }
      ctx.history = ctx.history.concat(req.sessionItemIds);
      const seeds = recentDistinct(ctx.history);
      const exclude = req.filters.excludePurchased && user ? [...user.purchased].slice(0, MAX_RETRIEVAL_EXCLUDES) : [];
      const topCategory = user?.affinity.find((a) => a.category.includes(' > '))?.category ?? '';
      const [seq, coVisits] = await Promise.all([
        retrieveTopBySequence(
          ctx,
          this.ports.sequenceRetrieval,
          ctx.history,
          SEQUENCE_CANDIDATES.recommend,
          exclude,
          SEQUENCE_CANDIDATES.rank,
        ),
        coVisitsOf(ctx, this.ports.coVisitation, seeds, ctx.coVisits, COVISIT_PER_SEED),
      ]);
      const cands = new CandidateSet();
      addSequenceCandidates(ctx, cands, seq);
      addCoVisitCandidates(cands, seeds, coVisits);
      if (topCategory) addPopularCandidates(cands, popularIn(ctx, popularity, topCategory), topCategory);
      addPopularCandidates(cands, popularIn(ctx, popularity, ''), '');
      return this.finish(ctx, cands, {});
    });
  }

  async search(req: SearchRequest): Promise<RankingResult> {
    const { query, limit } = validateSearch(req);
    const ctx = this.context('search', { ...req, query, limit, context: {} });
    return this.run(ctx, async () => {
      const cands = new CandidateSet();
      await Promise.all([this.loadUser(ctx), this.searchStage.candidates(ctx, query, cands)]);
      return this.finish(ctx, cands, { search: { personalize: ctx.user !== undefined } });
    });
  }

  async rank(req: RankRequest): Promise<RankingResult> {
    validateRank(req);
    const ctx = this.context('rank', {
      ...req,
      query: '',
      limit: req.itemIds.length,
      filters: NO_FILTERS,
      context: {},
    });
    return this.run(ctx, async () => {
      await this.loadUser(ctx);
      // Co-visitation scores the requested items from whole stored lists (the user context's are cut
      // at what Recommend proposes): the seeds' lists and the requested items' own, in one call.
      const seeds = recentDistinct(ctx.history, COVISIT_RANK.seeds);
      const [seq, lists] = await Promise.all([
        scoreBySequence(ctx, this.ports.sequenceRetrieval, ctx.history, req.itemIds, SEQUENCE_CANDIDATES.rank),
        seeds.length > 0
          ? coVisitsOf(
              ctx,
              this.ports.coVisitation,
              [...new Set([...seeds, ...req.itemIds])],
              new Map(),
              COVISIT_RANK.perItem,
            )
          : new Map<string, readonly Neighbor[]>(),
      ]);
      const cands = new CandidateSet(new Set(req.itemIds));
      for (const id of req.itemIds) cands.add(id, 'request');
      addSequenceCandidates(ctx, cands, seq);
      addCoVisitCandidates(cands, seeds, completedSeedLists(seeds, req.itemIds, lists));
      return this.finish(ctx, cands, { keepAll: true });
    });
  }

  async similarItems(req: SimilarItemsRequest): Promise<RankingResult> {
    const limit = validateSimilarItems(req);
    const ctx = this.context('similar_items', { ...req, userId: '', query: '', limit, context: {} });
    return this.run(ctx, async () => {
      const item = this.ports.catalog.get(req.itemId);
      const [coVisits, semantic] = await Promise.all([
        coVisitsOf(ctx, this.ports.coVisitation, [req.itemId], new Map(), SIMILAR_COVISITS),
        item
          ? retrieveByText(ctx, this.ports.textRetrieval, item.title, SIMILAR_SEMANTIC, [req.itemId])
          : Promise.resolve(undefined),
      ]);
      const cands = new CandidateSet();
      addCoVisitCandidates(cands, [req.itemId], coVisits);
      addSemanticCandidates(ctx, cands, semantic);
      if (item) addPopularCandidates(cands, popularIn(ctx, this.ports.popularity, item.category), item.category);
      return this.finish(ctx, cands, { excluded: new Set([...req.filters.excludeItemIds, req.itemId]) });
    });
  }

  /** Filters -> features (with in-memory item stats) -> ranker -> rules -> reasons -> impression. */
  private async finish(ctx: RequestContext, cands: CandidateSet, opts: FinishOptions): Promise<RankingResult> {
    const { catalog, itemStats } = this.ports;
    ctx.checkpoint('filters');
    const excluded = opts.excluded ?? new Set(ctx.filters.excludeItemIds);
    // One catalog lookup per candidate; features, rules and reasons read the same entries.
    const ids: string[] = [];
    const items: Array<RankingItem | undefined> = [];
    for (const c of cands.values()) {
      const item = catalog.get(c.itemId);
      if (!opts.keepAll && !passesFilters(item, ctx.filters, ctx.user, excluded)) continue;
      ids.push(c.itemId);
      items.push(item);
    }
    const stale = itemStats.staleReason?.();
    if (stale && ids.length > 0) ctx.degrade(itemStats.dependency ?? 'item_stats', stale);
    const candidate = (id: string) => cands.get(id) as Candidate;
    const matrix = this.matrices.acquire(ids.length);
    try {
      featurize(ids, items, candidate, itemStats, userSignals(ctx.user, catalog), matrix);
      // A session order is the session model's, not the ranker's: it has no per-feature contributions.
      const { scores, version, scorer } = opts.bySessionScore
        ? {
            scores: Float32Array.from(ids, (id) => candidate(id).sessionScore ?? Number.NEGATIVE_INFINITY),
            version: SESSION_ORDER_VERSION,
            scorer: undefined,
          }
        : await scoreRows(ctx, this.ranker, matrix, ids.length);
      ctx.checkpoint('rules');
      const nudge = (row: number) => (opts.search?.personalize ? personalization(scores[row] as number) : 0);
      const scored: Scored[] = ids.map((itemId, row) => {
        const score = opts.search
          ? (candidate(itemId).search?.score ?? Number.NEGATIVE_INFINITY) + nudge(row)
          : (scores[row] as number);
        return { itemId, score, item: items[row], row };
      });
      if (this.retention && !opts.keepAll) applyRetention(scored, ctx.user, ctx.churnRisk, this.retention);
      const ordered = opts.keepAll
        ? scored.sort((a, b) => b.score - a.score)
        : applyRules(scored, ctx.context, opts.search ? SEARCH_MAX_PER_CATEGORY : this.maxPerCategory, ctx.limit);
      const top = ordered.length > ctx.limit ? ordered.slice(0, ctx.limit) : ordered;
      const contributions =
        ctx.explain && scorer && !opts.search
          ? await occlusionContributions(
              matrix,
              top.map((s) => s.row),
              scores,
              scorer,
              RANKER_FEATURES,
            ).catch((err: unknown) => {
              ctx.degrade('ranker', err);
              return undefined;
            })
          : undefined;
      const result: RankingResult = {
        items: top.map((s, i) => {
          const c = candidate(s.itemId);
          return {
            itemId: s.itemId,
            score: s.score,
            reasons: reasonsFor(c, s.item, ctx.user, catalog),
            sources: c.sources,
            features: ctx.explain ? { ...namedFeatures(matrix, s.row), ...searchFeatures(c) } : {},
            contributions:
              ctx.explain && opts.search ? searchContributions(c, nudge(s.row)) : (contributions?.[i] ?? {}),
            rankerScore: ctx.explain ? (scores[s.row] as number) : 0,
          };
        }),
        modelVersion: [...ctx.versions, version].join(','),
        degraded: ctx.degradation.degraded,
        degradedReasons: ctx.degradation.reasons,
        requestId: ctx.requestId,
      };
      this.ports.impressions?.served(servedEvent(ctx, result, this.clock()));
      return result;
    } finally {
      this.matrices.release(matrix);
    }
  }
}
