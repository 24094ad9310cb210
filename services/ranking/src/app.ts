import { Streams } from '@aisle/contracts';
import { CachedCoVisitation, Catalog, ItemStatsTable, RankingPipeline, type CatalogUpsert } from '@aisle/ranking-core';
import {
  connectBus,
  followCatalog,
  ModelSlot,
  openModelRegistry,
  outgoingCredentials,
  PerTenant,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { RankingConfig } from './config';
import { embeddingClient, embeddingGrpcClient } from './embedding-client.grpc';
import { featureClient, featureGrpcClient, refreshItemStats } from './feature-client.grpc';
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

/** What ranking holds for one tenant: its catalog, item statistics, learned ranker and pipeline. */
interface TenantRanking {
  readonly catalog: Catalog;
  readonly pipeline: RankingPipeline;
  readonly ranker: ModelSlot<ServingRanker>;
  stop(): Promise<void>;
}

/** The ranking service's composition root (`main.ts` runs it as a process): adapters around the ranking core. */
export async function startRanking(base: ServiceBase, config: RankingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const startAt = new Date(Date.now() - 60_000);
  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.RANKING, Streams.MODELS]);
  const credentials = outgoingCredentials(config);
  const featureChannel = featureGrpcClient(config.featureAddr, credentials);
  const embeddingChannel = embeddingGrpcClient(config.embeddingAddr, credentials);
  lifecycle.onShutdown('clients', () => {
    featureChannel.close();
    embeddingChannel.close();
  });
  const registry = await openModelRegistry(bus, config, logger);
  const impressions = impressionPublisher(bus.publisher, logger);

  // One deployment serves every declared tenant: each gets its own catalog, statistics and ranker.
  const tenants = new PerTenant<TenantRanking>(base.tenants, {
    what: 'ranking',
    logger,
    create: async (tenant) => {
      const log = logger.child({ tenant });
      const catalog = new Catalog({ maxItems: config.maxCatalogItems });
      const batch: CatalogUpsert[] = [];
      let refused = 0;
      for await (const i of store.items.scan(tenant)) {
        batch.push(catalogUpsert(i));
        if (batch.length >= 1000) refused += catalog.upsert(batch.splice(0)).refused;
      }
      refused += catalog.upsert(batch).refused;
      log.info('catalog loaded', { items: catalog.size, refused });
      const features = featureClient(tenant, featureChannel);
      const itemStats = new ItemStatsTable(catalog);
      const statsRefresh = await refreshItemStats(features, itemStats, {
        intervalMs: config.itemStatsRefreshMs,
        staleAfterMs: 3 * config.itemStatsRefreshMs + 10_000,
        maxItems: config.maxCatalogItems,
        logger: log,
      });
      const embedding = embeddingClient(tenant, embeddingChannel);
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
          impressions,
        },
        {
          tenant,
          maxPerCategory: config.maxPerCategory,
          deadlines: { deadlineMs: config.deadlineMs, dependencyTimeoutMs: config.dependencyTimeoutMs },
        },
      );
      // The learned ranker: hot-swapped on publication; the heuristic serves until one exists.
      const ranker = new ModelSlot<ServingRanker>({
        registry,
        tenant,
        name: 'ranker',
        load: loadRanker,
        probe: probeRanker,
        activate: (model) => pipeline.setRanker(model),
        logger: log,
        metrics: base.registry,
      });
      await ranker.start();
      return {
        catalog,
        pipeline,
        ranker,
        stop: async () => {
          statsRefresh.stop();
          await ranker.stop();
        },
      };
    },
    dispose: (t) => t.stop(),
  });
  lifecycle.onShutdown('tenants', () => tenants.stop());
  await tenants.start();

  await followCatalog(base, bus, {
    name: 'ranking',
    startAt,
    ackWaitMs: config.ackWaitMs,
    onItems: async (tenant, items) => {
      const t = await tenants.get(tenant);
      const r = t.catalog.upsert(items.map((i) => catalogUpsert({ ...i, inStock: i.inStock ?? true })));
      if (r.refused > 0)
        logger.warn('catalog full: new items refused', { tenant, refused: r.refused, max: config.maxCatalogItems });
    },
  });
  base.setStatus(() => ({
    service: base.name,
    tenants: Object.fromEntries(
      tenants
        .built()
        .map(([tenant, t]) => [
          tenant,
          { catalogItems: t.catalog.size, ranker: t.ranker.current?.version ?? 'heuristic' },
        ]),
    ),
    // The shape every service reports its loaded versions in (the console reads it).
    models: tenants
      .built()
      .flatMap(([tenant, t]) =>
        t.ranker.current ? [{ tenant, model: 'ranker', version: t.ranker.current.version }] : [],
      ),
  }));
  const grpc = await serveGrpc(base, config, [
    rankingGrpcService(async (tenant) => (await tenants.get(tenant)).pipeline, base),
  ]);
  return {
    grpc,
    details: {
      tenants: tenants.built().map(([tenant, t]) => ({
        tenant,
        catalog_items: t.catalog.size,
        ranker: t.ranker.current?.version ?? 'heuristic',
      })),
    },
  };
}
