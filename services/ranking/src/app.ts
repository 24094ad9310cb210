import { Streams } from '@aisle/contracts';
import { CachedCoVisitation, Catalog, ItemStatsTable, RankingPipeline, type CatalogUpsert } from '@aisle/ranking-core';
import {
  connectBus,
  followCatalog,
  ModelSlot,
  openModelRegistry,
  outgoingCredentials,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { RankingConfig } from './config';
import { embeddingClient } from './embedding-client.grpc';
import { featureClient, refreshItemStats } from './feature-client.grpc';
import { impressionPublisher } from './impressions.nats';
import { loadRanker, probeRanker, type ServingRanker } from './ranker.ort';
import { rankingGrpcService } from './ranking.grpc';

const catalogUpsert = (i: CatalogUpsert): CatalogUpsert => ({
  itemId: i.itemId,
  title: i.title,
  category: i.category,
  brand: i.brand,
  price: i.price,
  inStock: i.inStock,
});

/** The ranking service's composition root (`main.ts` runs it as a process): adapters around the ranking core. */
export async function startRanking(base: ServiceBase, config: RankingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const startAt = new Date(Date.now() - 60_000);
  const catalog = new Catalog({ maxItems: config.maxCatalogItems });
  const batch: CatalogUpsert[] = [];
  let refused = 0;
  for await (const i of store.items.scan(config.tenant)) {
    batch.push(catalogUpsert(i));
    if (batch.length >= 1000) refused += catalog.upsert(batch.splice(0)).refused;
  }
  refused += catalog.upsert(batch).refused;
  logger.info('catalog loaded', { items: catalog.size, refused });

  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.RANKING, Streams.MODELS]);
  const credentials = outgoingCredentials(config);
  const features = featureClient(config.tenant, config.featureAddr, credentials);
  const embedding = embeddingClient(config.tenant, config.embeddingAddr, credentials);
  lifecycle.onShutdown('clients', () => {
    features.close();
    embedding.close();
  });
  const itemStats = new ItemStatsTable(catalog);
  const statsRefresh = await refreshItemStats(features, itemStats, {
    intervalMs: config.itemStatsRefreshMs,
    staleAfterMs: 3 * config.itemStatsRefreshMs + 10_000,
    maxItems: config.maxCatalogItems,
    logger,
  });
  lifecycle.onShutdown('item statistics refresh', () => statsRefresh.stop());
  const pipeline = new RankingPipeline(
    {
      catalog,
      lexical: catalog,
      userContext: features,
      coVisitation: new CachedCoVisitation(features, { maxEntries: 50_000, ttlMs: config.itemCacheMs }),
      itemStats,
      popularity: itemStats,
      sequenceRetrieval: embedding,
      textRetrieval: embedding,
      impressions: impressionPublisher(bus.publisher, logger),
    },
    {
      tenant: config.tenant,
      maxPerCategory: config.maxPerCategory,
      deadlines: { deadlineMs: config.deadlineMs, dependencyTimeoutMs: config.dependencyTimeoutMs },
    },
  );

  // The learned ranker: hot-swapped on publication; the heuristic serves until one exists.
  const ranker = new ModelSlot<ServingRanker>({
    registry: await openModelRegistry(bus, config, logger),
    tenant: config.tenant,
    name: 'ranker',
    load: loadRanker,
    probe: probeRanker,
    activate: (model) => pipeline.setRanker(model),
    logger,
    metrics: base.registry,
  });
  lifecycle.onShutdown('ranker model', () => ranker.stop());
  await ranker.start();

  await followCatalog(base, bus, {
    name: 'ranking',
    tenant: config.tenant,
    startAt,
    ackWaitMs: config.ackWaitMs,
    onItems: (items) => {
      const r = catalog.upsert(items.map((i) => catalogUpsert({ ...i, inStock: i.inStock ?? true })));
      if (r.refused > 0)
        logger.warn('catalog full: new items refused', { refused: r.refused, max: config.maxCatalogItems });
    },
  });
  base.setStatus(() => ({
    service: base.name,
    catalogItems: catalog.size,
    ranker: ranker.current?.version ?? 'heuristic',
    // The shape every service reports its loaded versions in (the console reads it).
    models: ranker.current ? [{ model: 'ranker', version: ranker.current.version }] : [],
  }));
  const grpc = await serveGrpc(base, config, [rankingGrpcService(pipeline, base)]);
  return { grpc, details: { catalog_items: catalog.size, ranker: ranker.current?.version ?? 'heuristic' } };
}
