import { ContentTypes, Headers, rankingV1, Streams, Subjects } from '@aisle/contracts';
import {
  connectBus,
  followCatalog,
  ModelRegistry,
  outgoingCredentials,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import { Catalog } from './catalog';
import { embeddingClient, featureClient } from './clients.grpc';
import type { RankingConfig } from './config';
import type { ServedEvent, Surface } from './ports';
import { loadRanker } from './ranker-model';
import { rankingGrpcService } from './ranking.grpc';
import { RankingService } from './ranking.service';

const SURFACES: Record<Surface, rankingV1.Surface> = {
  recommend: rankingV1.Surface.SURFACE_RECOMMEND,
  search: rankingV1.Surface.SURFACE_SEARCH,
  rank: rankingV1.Surface.SURFACE_RANK,
  similar_items: rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
};

/** The ranking service's composition root (`main.ts` runs it as a process). */
export async function startRanking(base: ServiceBase, config: RankingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const startAt = new Date(Date.now() - 60_000);
  const catalog = new Catalog();
  const entries = [];
  for await (const i of store.items.scan(config.tenant)) entries.push(i);
  catalog.upsert(entries);
  logger.info('catalog loaded', { items: catalog.size });

  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.RANKING, Streams.MODELS]);
  const credentials = outgoingCredentials(config);
  const features = featureClient(config.featureAddr, credentials);
  const embedding = embeddingClient(config.embeddingAddr, credentials);
  lifecycle.onShutdown('clients', () => {
    features.close();
    embedding.close();
  });
  const served = (e: ServedEvent) => {
    const payload = rankingV1.Served.encode({
      ...e,
      surface: SURFACES[e.surface],
      servedAt: new Date(e.servedAt),
    }).finish();
    bus.publisher
      .publish(Subjects.rankingServed, payload, {
        msgId: e.requestId,
        headers: { [Headers.contentType]: ContentTypes.protobuf },
      })
      .catch((err: unknown) => logger.warn('served event not published', { err }));
  };
  const service = new RankingService(
    catalog,
    features,
    embedding,
    { served },
    {
      tenant: config.tenant,
      deadlineMs: config.deadlineMs,
      dependencyTimeoutMs: config.dependencyTimeoutMs,
      itemCacheMs: config.itemCacheMs,
      popularCacheMs: config.popularCacheMs,
      maxPerCategory: config.maxPerCategory,
    },
  );

  // The learned ranker: hot-swapped on publication; the heuristic serves until one exists.
  const registry = await ModelRegistry.open(bus.nc, { replicas: config.natsStreamReplicas });
  let current: Awaited<ReturnType<typeof loadRanker>> | undefined;
  const activate = async () => {
    const artifact = await registry.active(config.tenant, 'ranker');
    if (!artifact || artifact.meta.version === current?.version) return;
    const next = await loadRanker(artifact.meta.version, artifact.onnx);
    const old = current;
    current = next;
    service.setRanker(next);
    logger.info('model active', { model: 'ranker', version: next.version, replaced: old?.version });
    // In-flight calls hold their own reference; give them a moment before freeing the session.
    if (old) setTimeout(() => void old.release(), 5_000).unref();
  };
  const watcher = registry.watch((meta) => {
    if (meta.tenant === config.tenant && meta.name === 'ranker')
      void activate().catch((err: unknown) => logger.error('ranker load failed; keeping the active one', { err }));
  });
  lifecycle.onShutdown('model watcher', () => watcher.unsubscribe());
  await activate().catch((err: unknown) => logger.error('ranker load failed; using the heuristic', { err }));

  await followCatalog(base, bus, {
    name: 'ranking',
    tenant: config.tenant,
    startAt,
    ackWaitMs: config.ackWaitMs,
    onItems: (items) =>
      catalog.upsert(
        items.map((i) => ({
          itemId: i.itemId,
          title: i.title,
          description: i.description,
          category: i.category,
          brand: i.brand,
          price: i.price,
          inStock: i.inStock ?? true,
        })),
      ),
  });
  base.setStatus(() => ({ service: base.name, catalogItems: catalog.size, ranker: current?.version ?? 'heuristic' }));
  const grpc = await serveGrpc(base, config, [rankingGrpcService(service, base)]);
  return { grpc, details: { catalog_items: catalog.size, ranker: current?.version ?? 'heuristic' } };
}
