import { embeddingV1, featureV1 } from '@aisle/contracts';
import { createGrpcClient, type grpc, type GrpcClient } from '@aisle/runtime';
import type { EmbeddingPort, FeaturesPort, ItemView, UserView } from './ports';

/** FeaturesPort over the feature service's gRPC API. */
export function featureClient(
  address: string,
  credentials?: grpc.ChannelCredentials,
): FeaturesPort & { close(): void } {
  const client: GrpcClient<typeof featureV1.FeatureServiceService> = createGrpcClient(
    featureV1.FeatureServiceService,
    address,
    { channelOptions: { 'grpc.keepalive_time_ms': 30_000 }, ...(credentials ? { credentials } : {}) },
  );
  return {
    close: () => client.close(),
    async users(tenant, userIds, timeoutMs) {
      const res = await client.getUserFeatures(
        { tenant, userIds: [...userIds], recentLimit: 0 },
        { deadlineMs: timeoutMs },
      );
      return res.users.map((u): UserView => ({
        userId: u.userId,
        known: u.known,
        recent: u.recent.map((r) => ({ itemId: r.itemId, type: r.type, at: r.occurredAt?.getTime() ?? 0 })),
        purchased: new Set(u.recent.filter((r) => r.type === 'purchase').map((r) => r.itemId)),
        affinity: u.categoryAffinity,
        price: u.priceBand && u.priceBand.count > 0 ? { mean: u.priceBand.mean, std: u.priceBand.stddev } : undefined,
        queries: u.recentQueries,
      }));
    },
    async items(tenant, itemIds, coVisitLimit, timeoutMs) {
      if (itemIds.length === 0) return new Map();
      const out = new Map<string, ItemView>();
      for (let s = 0; s < itemIds.length; s += 1000) {
        const res = await client.getItemFeatures(
          { tenant, itemIds: itemIds.slice(s, s + 1000), coVisitLimit },
          { deadlineMs: timeoutMs },
        );
        for (const i of res.items)
          out.set(i.itemId, {
            itemId: i.itemId,
            popularity7d: i.popularity7d,
            ctr: i.ctr,
            conversionRate: i.conversionRate,
            coVisited: i.coVisited,
          });
      }
      return out;
    },
    async popular(tenant, category, limit, timeoutMs) {
      const res = await client.listPopularItems({ tenant, category, limit }, { deadlineMs: timeoutMs });
      return res.items.map((i) => ({ itemId: i.itemId, score: i.popularity7d }));
    },
  };
}

/** EmbeddingPort over embedding-inference's gRPC API. */
export function embeddingClient(
  address: string,
  credentials?: grpc.ChannelCredentials,
): EmbeddingPort & { close(): void } {
  const client = createGrpcClient(embeddingV1.EmbeddingServiceService, address, {
    channelOptions: { 'grpc.keepalive_time_ms': 30_000 },
    ...(credentials ? { credentials } : {}),
  });
  return {
    close: () => client.close(),
    async bySequence(tenant, items, k, exclude, timeoutMs) {
      const r = await client.retrieve(
        {
          tenant,
          sequence: { itemIds: [...items] },
          k,
          excludeItemIds: [...exclude],
          index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_SEQUENCE,
        },
        { deadlineMs: timeoutMs },
      );
      return { items: r.items, version: r.modelVersion };
    },
    async byText(tenant, text, k, exclude, timeoutMs) {
      const r = await client.retrieve(
        { tenant, text, k, excludeItemIds: [...exclude], index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT },
        { deadlineMs: timeoutMs },
      );
      return { items: r.items, version: r.modelVersion };
    },
  };
}
