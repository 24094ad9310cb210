import { InvalidArgumentError } from '@aisle/contracts';

export interface Filters {
  /** Category path prefixes. */
  categories: string[];
  minPrice: number | undefined;
  maxPrice: number | undefined;
  inStockOnly: boolean;
  excludePurchased: boolean;
  excludeItemIds: string[];
}

export const NO_FILTERS: Filters = {
  categories: [],
  minPrice: undefined,
  maxPrice: undefined,
  inStockOnly: false,
  excludePurchased: false,
  excludeItemIds: [],
};

/** Absolute deadline (epoch ms) of the caller, if it set one, and a signal aborted when it leaves. */
export interface CallerInfo {
  callerDeadline?: number | undefined;
  /** The signal, or a function that makes it on demand (it is only needed once a dependency is called). */
  signal?: AbortSignal | (() => AbortSignal) | undefined;
}

export interface RecommendRequest extends CallerInfo {
  userId: string;
  limit: number;
  filters: Filters;
  context: Record<string, string>;
  explain: boolean;
  /** For anonymous visitors (or on top of the history): items seen in this session, oldest first. */
  sessionItemIds: string[];
  /** The visitor's session (anonymous visitors are assigned to experiment arms by it). */
  sessionId?: string | undefined;
}

export interface SearchRequest extends CallerInfo {
  query: string;
  userId: string;
  sessionId?: string | undefined;
  limit: number;
  filters: Filters;
  explain: boolean;
}

export interface RankRequest extends CallerInfo {
  userId: string;
  itemIds: string[];
  explain: boolean;
}

export interface SimilarItemsRequest extends CallerInfo {
  itemId: string;
  limit: number;
  filters: Filters;
  explain: boolean;
}

export interface RankedItem {
  itemId: string;
  score: number;
  reasons: string[];
  sources: string[];
  /** With `explain`: the ranker's input features by name. */
  features: Record<string, number>;
  /** With `explain`: per-feature contributions to the ranker's score (occlusion, see explain.ts). */
  contributions: Record<string, number>;
  /** With `explain`: the ranker's own score, before search's relevance blend and the rules. */
  rankerScore: number;
}

export interface RankingResult {
  items: RankedItem[];
  modelVersion: string;
  degraded: boolean;
  degradedReasons: string[];
  requestId: string;
}

export const MAX_LIMIT = 200;
export const MAX_RANK_ITEMS = 1000;
export const MAX_SESSION_ITEMS = 200;
export const MAX_QUERY_LENGTH = 512;
export const MAX_ID_LENGTH = 128;

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

/** The requested number of items (10 when 0). */
export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT)
    throw new InvalidArgumentError('limit', `must be between 1 and ${MAX_LIMIT}`);
  return limit || 10;
}

export function checkId(field: string, id: string, required: boolean): void {
  if (required && !id) throw new InvalidArgumentError(field, 'required');
  if (id.length > MAX_ID_LENGTH) throw new InvalidArgumentError(field, `longer than ${MAX_ID_LENGTH} characters`);
}

export function validateRecommend(req: RecommendRequest): number {
  checkId('user_id', req.userId, false);
  if (!req.userId && req.sessionItemIds.length === 0)
    throw new InvalidArgumentError('user_id', 'required (or session_item_ids for anonymous visitors)');
  if (req.sessionItemIds.length > MAX_SESSION_ITEMS)
    throw new InvalidArgumentError('session_item_ids', `more than ${MAX_SESSION_ITEMS}`);
  req.sessionItemIds.forEach((id, i) => checkId(`session_item_ids[${i}]`, id, true));
  validateFilters(req.filters);
  return checkLimit(req.limit);
}

/** Returns the trimmed query and the limit. */
export function validateSearch(req: SearchRequest): { query: string; limit: number } {
  const query = req.query.trim();
  if (!query) throw new InvalidArgumentError('query', 'required');
  if (query.length > MAX_QUERY_LENGTH)
    throw new InvalidArgumentError('query', `longer than ${MAX_QUERY_LENGTH} characters`);
  checkId('user_id', req.userId, false);
  validateFilters(req.filters);
  return { query, limit: checkLimit(req.limit) };
}

export function validateRank(req: RankRequest): void {
  checkId('user_id', req.userId, false);
  if (req.itemIds.length === 0) throw new InvalidArgumentError('item_ids', 'at least one item required');
  if (req.itemIds.length > MAX_RANK_ITEMS) throw new InvalidArgumentError('item_ids', `more than ${MAX_RANK_ITEMS}`);
  req.itemIds.forEach((id, i) => checkId(`item_ids[${i}]`, id, true));
}

export function validateSimilarItems(req: SimilarItemsRequest): number {
  checkId('item_id', req.itemId, true);
  validateFilters(req.filters);
  return checkLimit(req.limit);
}
