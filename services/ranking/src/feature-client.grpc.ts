import { featureV1 } from '@aisle/contracts';
import type {
  CoVisitationPort,
  ItemStats,
  ItemStatsTable,
  Neighbor,
  UserContextPort,
  UserProfile,
} from '@aisle/ranking-core';
import { createGrpcClient, type grpc, type GrpcClient, type Logger } from '@aisle/runtime';

/** Most ids per GetItemFeatures call (the feature service's limit). */
const IDS_PER_CALL = 1000;
const STATS_PAGE = 5000;

export type FeatureClient = UserContextPort &
  CoVisitationPort & {
    /** Every item's statistics (all pages), at most `max` of them. */
    itemStats(max: number, deadlineMs: number): Promise<Map<string, ItemStats>>;
  };

export function userProfileOf(u: featureV1.UserFeatures): UserProfile {
  return {
    userId: u.userId,
    recent: u.recent.map((r) => ({ itemId: r.itemId, type: r.type, at: r.occurredAt?.getTime() ?? 0 })),
    purchased: new Set(u.recent.filter((r) => r.type === 'purchase').map((r) => r.itemId)),
    affinity: u.categoryAffinity,
    price: u.priceBand && u.priceBand.count > 0 ? { mean: u.priceBand.mean, std: u.priceBand.stddev } : undefined,
    queries: u.recentQueries,
  };
}

export type FeatureGrpcClient = GrpcClient<typeof featureV1.FeatureServiceService>;

/** One channel to the feature service, shared by every tenant's ports. */
export function featureGrpcClient(address: string, credentials?: grpc.ChannelCredentials): FeatureGrpcClient {
  return createGrpcClient(featureV1.FeatureServiceService, address, {
    channelOptions: { 'grpc.keepalive_time_ms': 30_000 },
    ...(credentials ? { credentials } : {}),
  });
}

/**
 * One tenant's feature ports over the feature service's gRPC API (one deadline per call, from the
 * budget).
 */
export function featureClient(tenant: string, client: FeatureGrpcClient): FeatureClient {
  return {
    dependency: 'feature',
    async userContext(userId, opts, budget) {
      const res = await client.getUserContext(
        { tenant, userId, recentLimit: 0, coVisitItems: opts.coVisitItems, coVisitLimit: opts.coVisitLimit },
        { deadline: budget.deadline, signal: budget.signal },
      );
      const u = res.user;
      return {
        user: u?.known ? userProfileOf(u) : undefined,
        coVisits: new Map(res.coVisits.map((c) => [c.itemId, c.coVisited])),
      };
    },
    async coVisited(itemIds, limit, budget) {
      const out = new Map<string, readonly Neighbor[]>();
      const calls: Array<Promise<featureV1.GetItemFeaturesResponse>> = [];
      for (let s = 0; s < itemIds.length; s += IDS_PER_CALL)
        calls.push(
          client.getItemFeatures(
            { tenant, itemIds: itemIds.slice(s, s + IDS_PER_CALL), coVisitLimit: limit },
            { deadline: budget.deadline, signal: budget.signal },
          ),
        );
      for (const r of await Promise.all(calls)) for (const i of r.items) out.set(i.itemId, i.coVisited);
      return out;
    },
    async itemStats(max, deadlineMs) {
      const out = new Map<string, ItemStats>();
      let pageToken = '';
      do {
        const page = await client.listItemStats({ tenant, pageSize: STATS_PAGE, pageToken }, { deadlineMs });
        for (const i of page.items) {
          if (out.size >= max) return out;
          out.set(i.itemId, { popularity7d: i.popularity7d, ctr: i.ctr, conversionRate: i.conversionRate });
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
      return out;
    },
  };
}

/**
 * Keeps `table` filled with every item's statistics from the feature service, refreshed every
 * `intervalMs` in the background. While refreshes fail the table keeps serving its last values; past
 * `staleAfterMs` it says so (answers are then flagged degraded). `poke()` (on a feature change) refreshes
 * at once while the table is still empty, so a new tenant's first events are not hidden for an interval.
 */
export async function refreshItemStats(
  features: FeatureClient,
  table: ItemStatsTable,
  opts: { intervalMs: number; staleAfterMs: number; maxItems: number; logger: Logger },
): Promise<{ poke(): void; stop(): void }> {
  let lastSuccess = Date.now();
  let failing = false;
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = async (): Promise<void> => {
    try {
      table.replace(await features.itemStats(opts.maxItems, Math.max(1000, opts.intervalMs)));
      lastSuccess = Date.now();
      table.markStale(undefined);
      if (failing) opts.logger.info('item statistics refreshed again', { items: table.size });
      failing = false;
    } catch (err) {
      const ageMs = Date.now() - lastSuccess;
      if (!failing) opts.logger.warn('item statistics refresh failed; serving the last ones', { err });
      failing = true;
      if (ageMs > opts.staleAfterMs) {
        const msg = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
        table.markStale(`feature: item statistics not refreshed for ${Math.round(ageMs / 1000)} s (${msg})`);
      }
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    // Until the first statistics arrive (a new tenant, a feature service still starting), ask often.
    const delay = table.size === 0 ? Math.min(500, opts.intervalMs) : opts.intervalMs;
    timer = setTimeout(run, delay);
    timer.unref();
  };
  const run = (): void => {
    if (running || stopped) return;
    if (timer) clearTimeout(timer);
    running = refresh().finally(() => {
      running = undefined;
      schedule();
    });
  };
  await refresh();
  schedule();
  return {
    poke() {
      if (table.size === 0) run();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
