import { Streams } from '@aisle/contracts';
import { itemText } from '@aisle/ml';
import {
  connectBus,
  followCatalog,
  Gauge,
  ModelSlot,
  openModelRegistry,
  PerTenant,
  PinnedVersions,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import type { EmbeddingConfig } from './config';
import { embeddingGrpcService } from './embedding.grpc';
import { EmbeddingService, type CatalogText } from './embedding.service';
import { SequenceModel, TextModel, type ServingModel } from './models';

const SERVICE = 'aisle.embedding.v1.EmbeddingService';

/** One tenant's models (sequence encoder, text encoder) and text index. */
interface TenantEmbedding {
  readonly service: EmbeddingService;
  /** Items of the tenant's catalog held here (materialized from ITEMS). */
  catalogItems(): number;
  stop(): Promise<void>;
}

/** The embedding-inference service's composition root (`main.ts` runs it as a process). */
export async function startEmbedding(base: ServiceBase, config: EmbeddingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const bus = await connectBus(base, config, [Streams.ITEMS, Streams.MODELS]);
  const providerGauge = new Gauge({
    name: 'aisle_embedding_execution_provider',
    help: 'Active execution provider per model (1 = active)',
    labelNames: ['model', 'provider', 'version'],
    registers: [base.registry],
  });
  const registry = await openModelRegistry(bus, config, logger);
  // Ready (SERVING) once some tenant has its sequence model; tenants still without one answer FAILED_PRECONDITION.
  const anyReady = () => tenants.built().some(([, t]) => t.service.ready);
  const showProviders = () => {
    providerGauge.reset();
    for (const [, t] of tenants.built())
      for (const m of t.service.models())
        providerGauge.set({ model: m.model, provider: m.provider, version: m.version }, 1);
  };

  // One deployment serves every declared tenant: each gets its own models and text index.
  const tenants: PerTenant<TenantEmbedding> = new PerTenant<TenantEmbedding>(base.tenants, {
    what: 'embedding',
    logger,
    create: async (tenant) => {
      const log = logger.child({ tenant });
      // The tenant's catalog as text, materialized from the one ingest publishes: what a text model indexes.
      const texts = new Map<string, string>();
      const service = new EmbeddingService({
        providers: config.providers as Array<'cuda' | 'webgpu' | 'cpu'>,
        threads: config.ortThreads,
        batch: { maxBatch: config.maxBatch, maxDelayMs: config.maxDelayMs, budgetMs: config.budgetMs },
        catalog: () =>
          (async function* (): AsyncIterable<CatalogText> {
            for (const [itemId, text] of texts) yield { itemId, text };
          })(),
        log: (msg, fields) => log.info(msg, fields),
      });
      // New and updated items are embedded for semantic search as they come (cold start).
      const catalogFeed = await followCatalog(bus.js, tenant, {
        logger: log,
        registry: base.registry,
        onItems: async (items) => {
          const batch = items.map((i) => ({ itemId: i.itemId, text: itemText(i) }));
          for (const b of batch) texts.set(b.itemId, b.text);
          await service.indexItems(batch);
        },
      });
      // One slot per model kind: new versions while running, the pointers when starting.
      const slots: Array<{ stop(): Promise<void> }> = [];
      // Versions other than the active one that requests name (experiment arms' pins), a few per kind,
      // stopped with the slots.
      const pinnedOf = <M extends ServingModel>(name: 'sasrec' | 'text_encoder', is: (m: ServingModel) => m is M) =>
        new PinnedVersions<M>({
          registry,
          tenant,
          name,
          capacity: config.pinnedVersions,
          load: async (artifact) => {
            const m = await service.load(name, artifact);
            if (!is(m)) throw new Error(`${name} ${artifact.meta.version} did not load as a ${name} model`);
            return m;
          },
          probe: (m) => service.probe(m),
          logger: log,
        });
      const pinned = {
        sasrec: pinnedOf('sasrec', (m): m is SequenceModel => m instanceof SequenceModel),
        text_encoder: pinnedOf('text_encoder', (m): m is TextModel => m instanceof TextModel),
      };
      service.servePinned(pinned);
      slots.push(pinned.sasrec, pinned.text_encoder);
      for (const name of ['sasrec', 'text_encoder'] as const) {
        const slot = new ModelSlot<ServingModel>({
          registry,
          tenant,
          name,
          load: (artifact) => service.load(name, artifact),
          probe: (model) => service.probe(model),
          activate: (model) => {
            service.use(model);
            showProviders();
            // Slots start after gRPC does (tenants.start below), so `grpc` is there by now.
            if (service.ready) grpc.setServiceServing(SERVICE, true);
          },
          logger: log,
          metrics: base.registry,
        });
        slots.push(slot);
        await slot.start();
      }
      return {
        service,
        catalogItems: () => texts.size,
        stop: async () => {
          await catalogFeed.stop();
          await Promise.all(slots.map((s) => s.stop()));
        },
      };
    },
    dispose: (t) => t.stop(),
  });
  base.setStatus(() => ({
    service: base.name,
    requestedProviders: config.providers,
    tenants: Object.fromEntries(
      tenants.built().map(([tenant, t]) => [tenant, { ...t.service.status(), catalogItems: t.catalogItems() }]),
    ),
    models: tenants.built().flatMap(([tenant, t]) => t.service.models().map((m) => ({ tenant, ...m }))),
  }));

  const grpc = await serveGrpc(base, config, [
    embeddingGrpcService(async (tenant) => (await tenants.get(tenant)).service, {
      ...base,
      tenantRateLimits: false,
    }),
  ]);
  lifecycle.onShutdown('tenants', () => tenants.stop());
  await tenants.start();
  showProviders();

  const first = tenants.built()[0]?.[1].service;
  return {
    grpc,
    details: {
      providers: config.providers,
      tenants: tenants.built().map(([tenant, t]) => ({ tenant, models: t.service.models() })),
      degraded: first?.degradedReason(),
    },
    notReady: anyReady() ? [] : [SERVICE],
  };
}
