import {
  admissionConfig,
  commonConfig,
  modelConfig,
  defaultAddress,
  env,
  readConfig,
  servicePorts,
  type ConfigOf,
  type Env,
} from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...modelConfig,
  ...servicePorts('ranking'),
  // Ranking bounds its work by default: beyond this, callers are told to retry at once.
  ...admissionConfig({ maxConcurrent: 8, maxQueue: 64 }),
  featureAddr: env.string('AISLE_FEATURE_ADDR', {
    default: defaultAddress('feature'),
    description: 'feature service gRPC address',
  }),
  embeddingAddr: env.string('AISLE_EMBEDDING_ADDR', {
    default: defaultAddress('embedding-inference'),
    description: 'embedding-inference gRPC address',
  }),
  deadlineMs: env.duration('AISLE_RANKING_DEADLINE', {
    default: 300,
    description: 'answer within this long (or the caller deadline, if sooner), degrading if dependencies are late',
  }),
  dependencyTimeoutMs: env.duration('AISLE_RANKING_DEPENDENCY_TIMEOUT', {
    default: 150,
    description: 'longest wait for one dependency call',
  }),
  itemCacheMs: env.duration('AISLE_RANKING_ITEM_CACHE', {
    default: 120_000,
    description:
      "how long co-visit lists of items outside the user context (session items, SimilarItems, Rank's requested items) are reused (80-100 % of it, at random); past it a list answers once more while a background call loads it again",
  }),
  userCacheSize: env.int('AISLE_RANKING_USER_CACHE', {
    default: 1_000_000,
    min: 0,
    description:
      'most interactions (plus affinities and co-visits) of user contexts kept in memory; a user is dropped when the feature service announces a change (0 = off)',
  }),
  userCacheTtlMs: env.duration('AISLE_RANKING_USER_CACHE_TTL', {
    default: 300_000,
    description:
      'longest a cached user context serves without a change announcement (a bound on missed ones; changes announced are applied at once)',
  }),
  retrievalCacheSize: env.int('AISLE_RANKING_RETRIEVAL_CACHE', {
    default: 20_000,
    min: 0,
    description: 'sequence retrievals kept per (history, k, exclusions) until the model changes (0 = off)',
  }),
  retrievalCacheTtlMs: env.duration('AISLE_RANKING_RETRIEVAL_CACHE_TTL', {
    default: 600_000,
    description:
      "longest a sequence retrieval serves before it is loaded again in the background (a history's retrieval changes only with the model, which clears them all)",
  }),
  prefetchConcurrency: env.int('AISLE_RANKING_PREFETCH_CONCURRENCY', {
    default: 4,
    min: 1,
    description:
      'user refreshes made at once in the background (a user the feature service announces changed, a context past its TTL, every cached user after a new sequence model), so requests find them in memory',
  }),
  impressionBuffer: env.int('AISLE_RANKING_IMPRESSION_BUFFER', {
    default: 20_000,
    min: 1,
    description:
      'impressions held while NATS is away (the oldest are dropped beyond, counted in aisle_ranking_impressions_dropped_total)',
  }),
  itemStatsRefreshMs: env.duration('AISLE_RANKING_ITEM_STATS_REFRESH', {
    default: 5000,
    description: 'how often item statistics and popular lists (kept in memory) are refreshed from the feature service',
  }),
  maxCatalogItems: env.int('AISLE_RANKING_MAX_ITEMS', {
    default: 200_000,
    min: 1,
    description:
      'most catalog items kept in memory (titles, categories, prices; no descriptions); new items beyond are refused and logged',
  }),
  churnAddr: env.string('AISLE_CHURN_ADDR', {
    default: defaultAddress('churn-prediction'),
    description: 'churn-prediction gRPC address (asked only by experiment arms with a retention boost)',
  }),
  maxPerCategory: env.int('AISLE_RANKING_MAX_PER_CATEGORY', {
    default: 3,
    min: 1,
    description:
      'diversity rule: most items of one category among the first ten of Recommend and SimilarItems (Search keeps its relevance order)',
  }),
};

export type RankingConfig = ConfigOf<typeof configSpec>;

export function loadRankingConfig(source: Env = process.env): RankingConfig {
  return readConfig(configSpec, source);
}
