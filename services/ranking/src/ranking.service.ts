import { InvalidArgumentError } from '@aisle/contracts';
import { heuristicScore, RANKER_FEATURES, rankerFeatures, type RankerInputs } from '@aisle/ml';
import { randomUUID } from 'node:crypto';
import type { Catalog, CatalogEntry } from './catalog';
import type {
  EmbeddingPort,
  FeaturesPort,
  ItemView,
  Neighbor,
  RankerModel,
  ServedSink,
  Surface,
  UserView,
} from './ports';

export interface Filters {
  categories: string[];
  minPrice: number | undefined;
  maxPrice: number | undefined;
  inStockOnly: boolean;
  excludePurchased: boolean;
  excludeItemIds: string[];
}

export interface RankedItem {
  itemId: string;
  score: number;
  reasons: string[];
  sources: string[];
  features: Record<string, number>;
}

export interface RankingResult {
  items: RankedItem[];
  modelVersion: string;
  degraded: boolean;
  degradedReasons: string[];
  requestId: string;
}

export interface RankingOptions {
  tenant: string;
  deadlineMs: number;
  dependencyTimeoutMs: number;
  itemCacheMs: number;
  popularCacheMs: number;
  maxPerCategory: number;
  clock?: () => number;
}

interface Candidate {
  itemId: string;
  sources: Set<string>;
  seqScore?: number;
  seqRank?: number;
  covisScore: number;
  covisRank?: number;
  covisVia?: string;
  popularIn?: string;
  lexical?: number;
  terms?: string[];
  textScore?: number;
}

/** Collects why an answer is degraded; each dependency is named once. */
class Degradation {
  readonly reasons: string[] = [];
  note(dependency: string, err: unknown): void {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (!this.reasons.some((r) => r.startsWith(`${dependency}:`))) this.reasons.push(`${dependency}: ${msg}`);
  }
  get degraded(): boolean {
    return this.reasons.length > 0;
  }
}

export class DependencyTimeoutError extends Error {
  override readonly name = 'DependencyTimeoutError';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new DependencyTimeoutError(`no answer within ${Math.round(ms)} ms (${what})`)),
        Math.max(1, ms),
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

const MAX_LIMIT = 200;

export function validateFilters(f: Filters): void {
  if (f.minPrice !== undefined && (!Number.isFinite(f.minPrice) || f.minPrice < 0))
    throw new InvalidArgumentError('filters.min_price', 'must be a finite number >= 0');
  if (f.maxPrice !== undefined && (!Number.isFinite(f.maxPrice) || f.maxPrice < 0))
    throw new InvalidArgumentError('filters.max_price', 'must be a finite number >= 0');
  if (f.minPrice !== undefined && f.maxPrice !== undefined && f.maxPrice < f.minPrice)
    throw new InvalidArgumentError('filters.max_price', 'must be >= filters.min_price');
  if (f.categories.length > 50) throw new InvalidArgumentError('filters.categories', 'more than 50');
  if (f.excludeItemIds.length > 1000) throw new InvalidArgumentError('filters.exclude_item_ids', 'more than 1000');
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT)
    throw new InvalidArgumentError('limit', `must be between 1 and ${MAX_LIMIT}`);
  return limit || 10;
}

function checkId(field: string, id: string, required: boolean): void {
  if (required && !id) throw new InvalidArgumentError(field, 'required');
  if (id.length > 128) throw new InvalidArgumentError(field, 'longer than 128 characters');
}

const leaf = (category: string) => category.split(' > ').pop() ?? category;

/**
 * The staged pipeline behind RankingService: features -> candidates -> filters -> ranker -> rules ->
 * response with reasons. Dependencies that fail or are late are skipped and named in `degradedReasons`;
 * popularity (cached, stale if need be) and co-visitation keep the answer useful.
 */
export class RankingService {
  private readonly itemCache = new Map<string, { at: number; view: ItemView }>();
  private readonly popularCache = new Map<string, { at: number; items: Neighbor[] }>();
  private ranker: RankerModel | undefined;
  private readonly clock: () => number;

  constructor(
    private readonly catalog: Catalog,
    private readonly features: FeaturesPort,
    private readonly embedding: EmbeddingPort,
    private readonly sink: ServedSink,
    private readonly opts: RankingOptions,
  ) {
    this.clock = opts.clock ?? Date.now;
  }

  setRanker(model: RankerModel | undefined): void {
    this.ranker = model;
  }

  get rankerVersion(): string | undefined {
    return this.ranker?.version;
  }

  private budget(deadline: number): number {
    return Math.max(1, Math.min(this.opts.dependencyTimeoutMs, deadline - this.clock() - 5));
  }

  private async user(userId: string, deadline: number, deg: Degradation): Promise<UserView | undefined> {
    if (!userId) return undefined;
    try {
      const [u] = await withTimeout(
        this.features.users(this.opts.tenant, [userId], this.budget(deadline)),
        this.budget(deadline),
        'feature user',
      );
      return u?.known ? u : undefined;
    } catch (err) {
      deg.note('feature', err);
      return undefined;
    }
  }

  /** Item features with a short cache: they move slowly and every request needs many. */
  private async items(
    ids: readonly string[],
    coVisitLimit: number,
    deadline: number,
    deg: Degradation,
  ): Promise<Map<string, ItemView>> {
    const now = this.clock();
    const out = new Map<string, ItemView>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const c = this.itemCache.get(`${coVisitLimit}:${id}`);
      if (c && now - c.at < this.opts.itemCacheMs) out.set(id, c.view);
      else missing.push(id);
    }
    if (missing.length === 0) return out;
    try {
      const got = await withTimeout(
        this.features.items(this.opts.tenant, missing, coVisitLimit, this.budget(deadline)),
        this.budget(deadline),
        'feature items',
      );
      for (const [id, v] of got) {
        out.set(id, v);
        this.itemCache.set(`${coVisitLimit}:${id}`, { at: now, view: v });
      }
      if (this.itemCache.size > 50_000) this.itemCache.clear();
    } catch (err) {
      deg.note('feature', err);
      // Stale entries are better than none while the feature service is away.
      for (const id of missing) {
        const c = this.itemCache.get(`${coVisitLimit}:${id}`);
        if (c) out.set(id, c.view);
      }
    }
    return out;
  }

  private async popular(category: string, limit: number, deadline: number, deg: Degradation): Promise<Neighbor[]> {
    const c = this.popularCache.get(category);
    if (c && this.clock() - c.at < this.opts.popularCacheMs) return c.items.slice(0, limit);
    try {
      const items = await withTimeout(
        this.features.popular(this.opts.tenant, category, 100, this.budget(deadline)),
        this.budget(deadline),
        'popular items',
      );
      this.popularCache.set(category, { at: this.clock(), items });
      return items.slice(0, limit);
    } catch (err) {
      deg.note('feature', err);
      return (c?.items ?? []).slice(0, limit);
    }
  }

  private async sequenceCandidates(
    history: readonly string[],
    exclude: readonly string[],
    k: number,
    deadline: number,
    deg: Degradation,
  ): Promise<{ items: Neighbor[]; version: string } | undefined> {
    if (history.length === 0) return undefined;
    try {
      return await withTimeout(
        this.embedding.bySequence(this.opts.tenant, history.slice(-50), k, exclude, this.budget(deadline)),
        this.budget(deadline),
        'embedding retrieve',
      );
    } catch (err) {
      deg.note('embedding', err);
      return undefined;
    }
  }

  private addCoVisits(
    cands: Map<string, Candidate>,
    sources: readonly string[],
    itemViews: ReadonlyMap<string, ItemView>,
  ): void {
    // More recent source items weigh more; each candidate remembers its strongest source for the reason.
    const best = new Map<string, number>();
    sources.forEach((src, r) => {
      const weight = 1 / (r + 1);
      for (const cv of itemViews.get(src)?.coVisited ?? []) {
        if (cv.itemId === src) continue;
        const c = candidate(cands, cv.itemId, 'co_visit');
        c.covisScore += weight * cv.score;
        if (weight * cv.score > (best.get(cv.itemId) ?? 0)) {
          best.set(cv.itemId, weight * cv.score);
          c.covisVia = src;
        }
      }
    });
    [...cands.values()]
      .filter((c) => c.covisScore > 0)
      .sort((a, b) => b.covisScore - a.covisScore)
      .forEach((c, i) => (c.covisRank = i));
  }

  private passes(e: CatalogEntry | undefined, f: Filters, user: UserView | undefined): boolean {
    if (!e) return false;
    if (f.inStockOnly && !e.inStock) return false;
    if (f.minPrice !== undefined && e.price < f.minPrice) return false;
    if (f.maxPrice !== undefined && e.price > f.maxPrice) return false;
    if (f.categories.length > 0 && !f.categories.some((c) => e.category === c || e.category.startsWith(`${c} > `)))
      return false;
    if (f.excludeItemIds.includes(e.itemId)) return false;
    if (f.excludePurchased && user?.purchased.has(e.itemId)) return false;
    return true;
  }

  private inputs(
    c: Candidate,
    e: CatalogEntry | undefined,
    item: ItemView | undefined,
    user: UserView | undefined,
    lastCategory: string | undefined,
  ): RankerInputs {
    const top = user?.affinity.find((a) => a.category.includes(' > '))?.score ?? user?.affinity[0]?.score ?? 0;
    const aff = e && user ? (user.affinity.find((a) => a.category === e.category)?.score ?? 0) : 0;
    return {
      seqScore: c.seqScore,
      seqRank: c.seqRank,
      covisScore: c.covisScore,
      covisRank: c.covisRank,
      popularity: item?.popularity7d,
      ctr: item?.ctr,
      conversionRate: item?.conversionRate,
      categoryAffinity: top > 0 ? aff / top : 0,
      price: e?.price,
      userPriceMean: user?.price?.mean,
      userPriceStd: user?.price?.std,
      textScore: c.textScore,
      lexicalScore: c.lexical,
      historyLength: user?.recent.length ?? 0,
      sameCategoryAsLast: e !== undefined && e.category === lastCategory,
    };
  }

  private reasons(c: Candidate, e: CatalogEntry | undefined, user: UserView | undefined): string[] {
    const out: string[] = [];
    if (c.terms?.length) out.push(`matches ${c.terms.map((t) => `'${t}'`).join(', ')}`);
    else if (c.textScore !== undefined && c.lexical === undefined) out.push('similar in meaning to your search');
    if (c.covisVia) out.push(`often viewed with "${this.catalog.get(c.covisVia)?.title ?? c.covisVia}"`);
    if (c.seqRank !== undefined && c.seqRank < 20) out.push('picked for you from your recent activity');
    if (
      e &&
      user?.affinity[0] &&
      (user.affinity.find((a) => a.category === e.category)?.score ?? 0) > 0 &&
      out.length < 2
    )
      out.push(`you often browse ${leaf(e.category)}`);
    if (c.popularIn !== undefined) out.push(c.popularIn ? `popular in ${leaf(c.popularIn)}` : 'popular right now');
    return out.length > 0 ? out : ['matches your request'];
  }

  /** Scores rows with the learned ranker, or the heuristic when none is published (or it fails). */
  private async score(
    rows: readonly Float32Array[],
    deg: Degradation,
  ): Promise<{ scores: Float32Array; version: string }> {
    const model = this.ranker;
    if (model && rows.length > 0) {
      try {
        return { scores: await model.score(rows), version: `ranker:${model.version}` };
      } catch (err) {
        deg.note('ranker', err);
      }
    }
    return { scores: Float32Array.from(rows, heuristicScore), version: 'ranker:heuristic' };
  }

  /** Rules: in-stock first, context boosts, then at most `maxPerCategory` items of one category in the top ten. */
  private applyRules(
    items: Array<RankedItem & { entry: CatalogEntry | undefined }>,
    context: Record<string, string>,
  ): Array<RankedItem & { entry: CatalogEntry | undefined }> {
    const boostCategory = context['boost_category'];
    const boostBrand = context['boost_brand'];
    for (const it of items) {
      if (boostCategory && it.entry?.category.startsWith(boostCategory)) it.score += 1;
      if (boostBrand && it.entry?.brand === boostBrand) it.score += 1;
    }
    items.sort((a, b) => Number(b.entry?.inStock ?? true) - Number(a.entry?.inStock ?? true) || b.score - a.score);
    const top: typeof items = [];
    const deferred: typeof items = [];
    const counts = new Map<string, number>();
    for (const it of items) {
      const cat = it.entry?.category ?? '';
      if (top.length < 10 && cat && (counts.get(cat) ?? 0) >= this.opts.maxPerCategory) deferred.push(it);
      else if (top.length < 10) {
        top.push(it);
        counts.set(cat, (counts.get(cat) ?? 0) + 1);
      } else deferred.push(it);
    }
    return [...top, ...deferred];
  }

  private async finish(
    surface: Surface,
    userId: string,
    query: string,
    cands: Map<string, Candidate>,
    user: UserView | undefined,
    filters: Filters,
    limit: number,
    opts: {
      explain: boolean;
      context: Record<string, string>;
      deadline: number;
      deg: Degradation;
      versions: string[];
      keepUnknown?: boolean;
      relevanceWeight?: number;
    },
  ): Promise<RankingResult> {
    const ids = [...cands.keys()].filter((id) =>
      opts.keepUnknown ? true : this.passes(this.catalog.get(id), filters, user),
    );
    const itemViews = await this.items(ids, 0, opts.deadline, opts.deg);
    const lastCategory = this.catalog.get(user?.recent[user.recent.length - 1]?.itemId ?? '')?.category;
    const rows = ids.map((id) =>
      rankerFeatures(
        this.inputs(cands.get(id) as Candidate, this.catalog.get(id), itemViews.get(id), user, lastCategory),
      ),
    );
    const { scores, version } = await this.score(rows, opts.deg);
    const ranked = ids.map((id, i) => {
      const c = cands.get(id) as Candidate;
      const entry = this.catalog.get(id);
      let score = scores[i] as number;
      // Search: relevance leads, personalization orders within it.
      if (opts.relevanceWeight !== undefined)
        score =
          opts.relevanceWeight * Math.max(c.lexical ?? 0, c.textScore ?? 0) +
          (1 - opts.relevanceWeight) * (1 / (1 + Math.exp(-score)));
      return {
        itemId: id,
        score,
        reasons: entry ? this.reasons(c, entry, user) : ['not in the catalog'],
        sources: [...c.sources],
        features: opts.explain
          ? Object.fromEntries(RANKER_FEATURES.map((f, j) => [f, (rows[i] as Float32Array)[j] as number]))
          : {},
        entry,
      };
    });
    const ordered = opts.keepUnknown ? ranked.sort((a, b) => b.score - a.score) : this.applyRules(ranked, opts.context);
    const items = ordered.slice(0, limit).map(({ entry: _entry, ...rest }) => rest);
    const result: RankingResult = {
      items,
      modelVersion: [...opts.versions, version].join(','),
      degraded: opts.deg.degraded,
      degradedReasons: opts.deg.reasons,
      requestId: randomUUID(),
    };
    this.sink.served({
      requestId: result.requestId,
      tenant: this.opts.tenant,
      userId,
      surface,
      query,
      items: items.map((it, i) => ({ itemId: it.itemId, position: i + 1, score: it.score })),
      modelVersion: result.modelVersion,
      degraded: result.degraded,
      servedAt: this.clock(),
    });
    return result;
  }

  private deadlineFrom(callerDeadline: number | undefined): number {
    const own = this.clock() + this.opts.deadlineMs;
    return callerDeadline !== undefined ? Math.min(own, callerDeadline) : own;
  }

  async recommend(req: {
    userId: string;
    limit: number;
    filters: Filters;
    context: Record<string, string>;
    explain: boolean;
    sessionItemIds: string[];
    callerDeadline?: number | undefined;
  }): Promise<RankingResult> {
    checkId('user_id', req.userId, false);
    if (!req.userId && req.sessionItemIds.length === 0)
      throw new InvalidArgumentError('user_id', 'required (or session_item_ids for anonymous visitors)');
    if (req.sessionItemIds.length > 200) throw new InvalidArgumentError('session_item_ids', 'more than 200');
    const limit = checkLimit(req.limit);
    validateFilters(req.filters);
    const deadline = this.deadlineFrom(req.callerDeadline);
    const deg = new Degradation();
    const user = await this.user(req.userId, deadline, deg);
    const history = [...(user?.recent.map((r) => r.itemId) ?? []), ...req.sessionItemIds];
    const recentDistinct = [...new Set([...history].reverse())].slice(0, 5);
    const exclude = req.filters.excludePurchased && user ? [...user.purchased] : [];
    const topCategory = user?.affinity.find((a) => a.category.includes(' > '))?.category ?? '';
    const [seq, recentViews, popularCat, popularAll] = await Promise.all([
      this.sequenceCandidates(history, exclude.slice(0, 500), 100, deadline, deg),
      this.items(recentDistinct, 30, deadline, deg),
      topCategory ? this.popular(topCategory, 30, deadline, deg) : Promise.resolve([]),
      this.popular('', 30, deadline, deg),
    ]);
    const cands = new Map<string, Candidate>();
    seq?.items.forEach((n, i) => {
      const c = candidate(cands, n.itemId, 'sequence');
      c.seqScore = n.score;
      c.seqRank = i;
    });
    this.addCoVisits(cands, recentDistinct, recentViews);
    for (const p of popularCat) candidate(cands, p.itemId, 'category_popularity').popularIn ??= topCategory;
    for (const p of popularAll) candidate(cands, p.itemId, 'popularity').popularIn ??= '';
    return this.finish('recommend', req.userId, '', cands, user, req.filters, limit, {
      explain: req.explain,
      context: req.context,
      deadline,
      deg,
      versions: seq ? [`sasrec:${seq.version}`] : [],
    });
  }

  async search(req: {
    query: string;
    userId: string;
    limit: number;
    filters: Filters;
    explain: boolean;
    callerDeadline?: number | undefined;
  }): Promise<RankingResult> {
    const query = req.query.trim();
    if (!query) throw new InvalidArgumentError('query', 'required');
    if (query.length > 512) throw new InvalidArgumentError('query', 'longer than 512 characters');
    checkId('user_id', req.userId, false);
    const limit = checkLimit(req.limit);
    validateFilters(req.filters);
    const deadline = this.deadlineFrom(req.callerDeadline);
    const deg = new Degradation();
    const [user, semantic] = await Promise.all([
      this.user(req.userId, deadline, deg),
      withTimeout(
        this.embedding.byText(this.opts.tenant, query, 100, [], this.budget(deadline)),
        this.budget(deadline),
        'embedding text',
      ).catch((err: unknown) => {
        deg.note('embedding', err);
        return undefined;
      }),
    ]);
    const cands = new Map<string, Candidate>();
    for (const m of this.catalog.search(query, 200)) {
      const c = candidate(cands, m.itemId, 'bm25');
      c.lexical = m.score;
      c.terms = m.terms;
    }
    for (const n of semantic?.items ?? []) {
      const c = candidate(cands, n.itemId, 'semantic');
      c.textScore = n.score;
    }
    return this.finish('search', req.userId, query, cands, user, req.filters, limit, {
      explain: req.explain,
      context: {},
      deadline,
      deg,
      versions: semantic ? [`text_encoder:${semantic.version}`] : [],
      relevanceWeight: user ? 0.8 : 0.95,
    });
  }

  async rank(req: {
    userId: string;
    itemIds: string[];
    explain: boolean;
    callerDeadline?: number | undefined;
  }): Promise<RankingResult> {
    checkId('user_id', req.userId, false);
    if (req.itemIds.length === 0) throw new InvalidArgumentError('item_ids', 'at least one item required');
    if (req.itemIds.length > 1000) throw new InvalidArgumentError('item_ids', 'more than 1000');
    req.itemIds.forEach((id, i) => checkId(`item_ids[${i}]`, id, true));
    const deadline = this.deadlineFrom(req.callerDeadline);
    const deg = new Degradation();
    const user = await this.user(req.userId, deadline, deg);
    const history = user?.recent.map((r) => r.itemId) ?? [];
    const recentDistinct = [...new Set([...history].reverse())].slice(0, 5);
    const [seq, recentViews] = await Promise.all([
      this.sequenceCandidates(history, [], 300, deadline, deg),
      this.items(recentDistinct, 30, deadline, deg),
    ]);
    const wanted = new Set(req.itemIds);
    const cands = new Map<string, Candidate>();
    for (const id of req.itemIds) candidate(cands, id, 'request');
    seq?.items.forEach((n, i) => {
      if (!wanted.has(n.itemId)) return;
      const c = cands.get(n.itemId) as Candidate;
      c.seqScore = n.score;
      c.seqRank = i;
      c.sources.add('sequence');
    });
    const covis = new Map<string, Candidate>();
    this.addCoVisits(covis, recentDistinct, recentViews);
    for (const [id, c] of covis) {
      const target = cands.get(id);
      if (!target) continue;
      target.covisScore = c.covisScore;
      target.covisRank = c.covisRank;
      target.covisVia = c.covisVia;
      target.sources.add('co_visit');
    }
    const none: Filters = {
      categories: [],
      minPrice: undefined,
      maxPrice: undefined,
      inStockOnly: false,
      excludePurchased: false,
      excludeItemIds: [],
    };
    return this.finish('rank', req.userId, '', cands, user, none, req.itemIds.length, {
      explain: req.explain,
      context: {},
      deadline,
      deg,
      versions: seq ? [`sasrec:${seq.version}`] : [],
      keepUnknown: true,
    });
  }

  async similarItems(req: {
    itemId: string;
    limit: number;
    filters: Filters;
    explain: boolean;
    callerDeadline?: number | undefined;
  }): Promise<RankingResult> {
    checkId('item_id', req.itemId, true);
    const limit = checkLimit(req.limit);
    validateFilters(req.filters);
    const deadline = this.deadlineFrom(req.callerDeadline);
    const deg = new Degradation();
    const entry = this.catalog.get(req.itemId);
    const filters = { ...req.filters, excludeItemIds: [...req.filters.excludeItemIds, req.itemId] };
    const [views, semantic, popularCat] = await Promise.all([
      this.items([req.itemId], 50, deadline, deg),
      entry
        ? withTimeout(
            this.embedding.byText(this.opts.tenant, entry.title, 50, [req.itemId], this.budget(deadline)),
            this.budget(deadline),
            'embedding text',
          ).catch((err: unknown) => {
            deg.note('embedding', err);
            return undefined;
          })
        : Promise.resolve(undefined),
      entry ? this.popular(entry.category, 30, deadline, deg) : Promise.resolve([]),
    ]);
    const cands = new Map<string, Candidate>();
    this.addCoVisits(cands, [req.itemId], views);
    for (const n of semantic?.items ?? []) {
      const c = candidate(cands, n.itemId, 'semantic');
      c.textScore = n.score;
    }
    for (const p of popularCat) candidate(cands, p.itemId, 'category_popularity').popularIn ??= entry?.category ?? '';
    return this.finish('similar_items', '', '', cands, undefined, filters, limit, {
      explain: req.explain,
      context: {},
      deadline,
      deg,
      versions: semantic ? [`text_encoder:${semantic.version}`] : [],
    });
  }
}

function candidate(m: Map<string, Candidate>, itemId: string, source: string): Candidate {
  let c = m.get(itemId);
  if (!c) {
    c = { itemId, sources: new Set(), covisScore: 0 };
    m.set(itemId, c);
  }
  c.sources.add(source);
  return c;
}
