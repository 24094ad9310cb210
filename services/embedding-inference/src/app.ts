import { Streams } from '@aisle/contracts';
import { itemText } from '@aisle/ml';
import {
  connectBus,
  followCatalog,
  Gauge,
  ModelSlot,
  openModelRegistry,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { EmbeddingConfig } from './config';
import { embeddingGrpcService } from './embedding.grpc';
import { EmbeddingService, type CatalogText } from './embedding.service';
import type { ServingModel } from './models';

/** The embedding-inference service's composition root (`main.ts` runs it as a process). */
export async function startEmbedding(base: ServiceBase, config: EmbeddingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.MODELS]);
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
  const registry = await openModelRegistry(bus, config, logger);
  const showProviders = () => {
    providerGauge.reset();
    for (const m of service.models())
      providerGauge.set({ model: m.model, provider: m.provider, version: m.version }, 1);
  };
  // One slot per model kind: new versions while running, the pointers when starting.
  for (const name of ['sasrec', 'text_encoder'] as const) {
    const slot = new ModelSlot<ServingModel>({
      registry,
      tenant: config.tenant,
      name,
      load: (artifact) => service.load(name, artifact),
      probe: (model) => service.probe(model),
      activate: (model) => {
        service.use(model);
        showProviders();
        if (service.ready) grpc.setServiceServing(serviceName, true);
      },
      logger,
      metrics: base.registry,
    });
    lifecycle.onShutdown(`${name} model`, () => slot.stop());
    await slot.start();
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
