import { type churnV1, type featureV1, type modelsV1, type rankingV1 } from '@aisle/contracts';
import type { ModelKindView, ModelsView, ScoredRow, SearchView, ServiceHealth, ShopperView } from './api';
import { loadedFor } from './overview';

/** The calls the pages need from the other services; `services.grpc.ts` implements them. */
export interface DataPorts {
  userFeatures(tenant: string, userId: string): Promise<featureV1.GetUserFeaturesResponse>;
  items(tenant: string, itemIds: string[]): Promise<featureV1.ItemFeatures[]>;
  churn(tenant: string, userId: string): Promise<churnV1.ChurnScore | undefined>;
  recommend(tenant: string, userId: string, limit: number): Promise<rankingV1.RecommendResponse>;
  search(tenant: string, query: string, userId: string, limit: number): Promise<rankingV1.SearchResponse>;
}

export interface RegistryPort {
  /** The model kinds a tenant has stored versions of. */
  names(tenant: string): Promise<string[]>;
  versions(tenant: string, name: string): Promise<modelsV1.ModelPublished[]>;
  activeVersion(tenant: string, name: string): Promise<string | null>;
}

/** The order the Models page lists the kinds it knows in; any other kind the registry holds follows. */
const KIND_ORDER = ['sasrec', 'text_encoder', 'ranker', 'search_ranker', 'session', 'churn'];
/**
 * Which services are expected to load which model, so that one that has not loaded it yet shows as
 * waiting; a service whose /status reports a kind not named here is listed too.
 */
const SERVED_BY: Record<string, string[]> = {
  sasrec: ['embedding'],
  text_encoder: ['embedding'],
  ranker: ['ranking'],
  search_ranker: ['ranking'],
  session: ['ranking'],
  churn: ['churn'],
};

const ms = (d: Date | undefined) => (d ? d.getTime() : null);
const errorText = (err: unknown) => (err instanceof Error ? err.message.split('\n')[0] : String(err)) ?? '';

const BANDS: Record<number, string> = { 1: 'low', 2: 'medium', 3: 'high' };

async function titles(ports: DataPorts, tenant: string, ids: string[]): Promise<Map<string, featureV1.ItemFeatures>> {
  if (ids.length === 0) return new Map();
  const items = await ports.items(tenant, [...new Set(ids)].slice(0, 1000));
  return new Map(items.map((i) => [i.itemId, i]));
}

function scoredRow(it: rankingV1.ScoredItem, info: Map<string, featureV1.ItemFeatures>): ScoredRow {
  const f = info.get(it.itemId);
  return {
    itemId: it.itemId,
    title: f?.title || it.itemId,
    category: f?.category ?? '',
    price: f?.price ?? 0,
    score: it.score,
    rankerScore: it.rankerScore,
    reasons: it.reasons,
    sources: it.sources,
    features: it.features,
    contributions: it.contributions,
  };
}

/**
 * One shopper: recent events and features, churn risk with its top factors, and recommendations with
 * reasons and per-feature contributions. Each part that fails is named in `problems`; the rest shows.
 */
export async function shopperView(ports: DataPorts, tenant: string, userId: string): Promise<ShopperView> {
  const problems: string[] = [];
  const [features, churn, recs] = await Promise.all([
    ports.userFeatures(tenant, userId).catch((err: unknown) => {
      problems.push(`features: ${errorText(err)}`);
      return undefined;
    }),
    ports.churn(tenant, userId).catch((err: unknown) => {
      problems.push(`churn: ${errorText(err)}`);
      return undefined;
    }),
    ports.recommend(tenant, userId, 10).catch((err: unknown) => {
      problems.push(`recommendations: ${errorText(err)}`);
      return undefined;
    }),
  ]);
  const u = features?.users[0];
  const recent = [...(u?.recent ?? [])].reverse().slice(0, 50);
  const info = await titles(ports, tenant, [
    ...recent.map((r) => r.itemId),
    ...(recs?.items.map((i) => i.itemId) ?? []),
  ]).catch((err: unknown) => {
    problems.push(`item titles: ${errorText(err)}`);
    return new Map<string, featureV1.ItemFeatures>();
  });
  const c = u?.counts;
  return {
    tenant,
    userId,
    known: u?.known ?? false,
    asOf: ms(features?.asOf),
    recent: recent.map((r) => ({
      itemId: r.itemId,
      title: info.get(r.itemId)?.title || r.itemId,
      type: r.type,
      at: ms(r.occurredAt) ?? 0,
    })),
    counts: c
      ? {
          view: c.view,
          click: c.click,
          add_to_cart: c.addToCart,
          remove_from_cart: c.removeFromCart,
          purchase: c.purchase,
          search: c.search,
        }
      : {},
    sessions: u?.sessions ?? 0,
    purchases: u?.purchases ?? 0,
    spend: u?.spend ?? 0,
    firstSeenAt: ms(u?.firstSeenAt),
    lastSeenAt: ms(u?.lastSeenAt),
    categoryAffinity: u?.categoryAffinity.slice(0, 8) ?? [],
    recentQueries: u?.recentQueries.slice(-10).reverse() ?? [],
    churn:
      churn && churn.known
        ? {
            risk: churn.risk,
            band: BANDS[churn.band] ?? 'unknown',
            modelVersion: churn.modelVersion,
            factors: churn.topFactors.map((f) => ({
              feature: f.feature,
              value: f.value,
              contribution: f.contribution,
            })),
          }
        : null,
    problems,
    recommendations: recs
      ? {
          modelVersion: recs.modelVersion,
          degraded: recs.degraded,
          degradedReasons: recs.degradedReasons,
          requestId: recs.requestId,
          items: recs.items.map((i) => scoredRow(i, info)),
        }
      : null,
  };
}

/**
 * A search as ranking's Search explains it: per result the lexical (BM25F, normalized per query) and
 * semantic features, the search model's score (its `search.*` parts), the personalization nudge and the
 * final score (after rules).
 */
export async function searchView(
  ports: DataPorts,
  tenant: string,
  query: string,
  userId: string,
  limit: number,
): Promise<SearchView> {
  const res = await ports.search(tenant, query, userId, limit);
  const info = await titles(
    ports,
    tenant,
    res.items.map((i) => i.itemId),
  ).catch(() => new Map<string, featureV1.ItemFeatures>());
  const sum = (parts: Record<string, number>) =>
    Object.entries(parts).reduce((a, [k, v]) => (k.startsWith('search.') ? a + v : a), 0);
  return {
    tenant,
    query,
    modelVersion: res.modelVersion,
    searchModel:
      res.modelVersion
        .split(',')
        .find((p) => p.startsWith('search:'))
        ?.slice('search:'.length) ?? '',
    degraded: res.degraded,
    degradedReasons: res.degradedReasons,
    items: res.items.map((i) => ({
      ...scoredRow(i, info),
      bm25: i.features['lexical_score'] ?? 0,
      semantic: i.features['text_score'] ?? 0,
      searchScore: sum(i.contributions),
      personalization: i.contributions['personalization'] ?? 0,
    })),
  };
}

const kindRank = (name: string) => {
  const i = KIND_ORDER.indexOf(name);
  return i < 0 ? KIND_ORDER.length : i;
};

/**
 * Every model kind the tenant's registry holds (and any a service reports loaded for it), each with
 * every stored version, which one the registry points at, and what each serving service has loaded.
 */
export async function modelsView(
  registry: RegistryPort,
  services: ServiceHealth[],
  tenant: string,
): Promise<ModelsView> {
  const loaded = services.map((s) => ({ service: s.service, models: loadedFor(s, tenant) }));
  const names = [...new Set([...(await registry.names(tenant)), ...loaded.flatMap((l) => Object.keys(l.models))])].sort(
    (a, b) => kindRank(a) - kindRank(b) || a.localeCompare(b),
  );
  const kinds = await Promise.all(
    names.map(async (name): Promise<ModelKindView> => {
      const [versions, activeVersion] = await Promise.all([
        registry.versions(tenant, name),
        registry.activeVersion(tenant, name),
      ]);
      return {
        name,
        activeVersion,
        live: loaded
          .filter((l) => SERVED_BY[name]?.includes(l.service) || l.models[name] !== undefined)
          .map((l) => ({ service: l.service, version: l.models[name] ?? '' })),
        versions: versions.map((v) => ({
          version: v.version,
          createdAt: ms(v.createdAt),
          metrics: v.metrics,
          curves: v.curves.map((c) => ({ name: c.name, values: c.values })),
          dataRange: v.dataRange
            ? { from: ms(v.dataRange.from), to: ms(v.dataRange.to), events: v.dataRange.events }
            : null,
          sha256: v.sha256,
          active: v.version === activeVersion,
        })),
      };
    }),
  );
  return { tenant, kinds };
}
