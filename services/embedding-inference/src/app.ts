import { Streams } from '@aisle/contracts';
import { itemText } from '@aisle/ml';
import {
  connectBus,
  followCatalog,
  Gauge,
  ModelRegistry,
  serveGrpc,
  type ModelName,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { EmbeddingConfig } from './config';
import { embeddingGrpcService } from './embedding.grpc';
import { EmbeddingService, type CatalogText } from './embedding.service';

/** The embedding-inference service's composition root (`main.ts` runs it as a process). */
export async function startEmbedding(base: ServiceBase, config: EmbeddingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.MODELS]);
  const registry = await ModelRegistry.open(bus.nc, { replicas: config.natsStreamReplicas });
  const service = new EmbeddingService({
    providers: config.providers as Array<'cuda' | 'webgpu' | 'cpu'>,
    threads: config.ortThreads,
    batch: { maxBatch: config.maxBatch, maxDelayMs: config.maxDelayMs, budgetMs: config.budgetMs },
    catalog: () =>
      (async function* (): AsyncIterable<CatalogText> {
        for await (const i of store.items.scan(config.tenant)) yield { itemId: i.itemId, text: itemText(i) };
      })(),
    log: (msg, fields) => logger.info(msg, fields),
  });
  lifecycle.onShutdown('models', () => service.close());
  const providerGauge = new Gauge({
    name: 'aisle_embedding_execution_provider',
    help: 'Active execution provider per model (1 = active)',
    labelNames: ['model', 'provider', 'version'],
    registers: [base.registry],
  });
  base.setStatus(() => ({ service: base.name, requestedProviders: config.providers, ...service.status() }));

  const startAt = new Date(Date.now() - 60_000);
  const grpc = await serveGrpc(base, config, [embeddingGrpcService(service, base)]);
  const serviceName = 'aisle.embedding.v1.EmbeddingService';
  const activate = async (name: ModelName) => {
    const artifact = await registry.active(config.tenant, name);
    if (!artifact) return;
    await service.activate(artifact);
    providerGauge.reset();
    for (const m of service.models())
      providerGauge.set({ model: m.model, provider: m.provider, version: m.version }, 1);
    if (service.ready) grpc.setServiceServing(serviceName, true);
  };
  // New versions while running; the pointers when starting.
  const watcher = registry.watch((meta) => {
    if (meta.tenant !== config.tenant || (meta.name !== 'sasrec' && meta.name !== 'text_encoder')) return;
    void activate(meta.name).catch((err: unknown) =>
      logger.error('model load failed; keeping the active version', { model: meta.name, version: meta.version, err }),
    );
  });
  lifecycle.onShutdown('model watcher', () => watcher.unsubscribe());
  for (const name of ['sasrec', 'text_encoder'] as const) {
    await activate(name).catch((err: unknown) => logger.error('model load failed', { model: name, err }));
  }

  // Catalog changes: embed new and updated items for semantic search (cold start).
  await followCatalog(base, bus, {
    name: 'embedding',
    tenant: config.tenant,
    startAt,
    ackWaitMs: config.ackWaitMs,
    onItems: (items) => service.indexItems(items.map((i) => ({ itemId: i.itemId, text: itemText(i) }))),
  });
  return {
    grpc,
    details: { providers: config.providers, models: service.models(), degraded: service.degradedReason() },
    notReady: service.ready ? [] : [serviceName],
  };
}
