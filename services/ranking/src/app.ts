import { Streams } from '@aisle/contracts';
import { isInProcess, isRemote, type Experiment } from '@aisle/experiments';
import {
  CachedChurnRisk,
  CachedCoVisitation,
  CachedSequenceRetrieval,
  CachedUserContext,
  BackgroundRefresh,
  Catalog,
  ItemStatsTable,
  RankingPipeline,
  SEQUENCE_CANDIDATES,
  UserWarmer,
  type CatalogUpsert,
  type PipelinePorts,
  type RetentionRule,
} from '@aisle/ranking-core';
import {
  connectBus,
  counter,
  eraseIndexedMessages,
  pruneMessageIndex,
  ExperimentBucket,
  followCatalog,
  followForgetRequests,
  ModelSlot,
  openModelRegistry,
  outgoingCredentials,
  PerTenant,
  serveGrpc,
  usesModel,
  type ModelArtifact,
  type ModelName,
  type ServiceBase,
  type ServingModel,
  type StartedService,
  type TenantRules,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import { randomUUID } from 'node:crypto';
import { ArmPipelineCache } from './arm-pipelines';
import { pinnedPorts, RemotePinWarmer } from './arm-ports';
import { churnClient, churnGrpcClient } from './churn-client.grpc';
import type { RankingConfig } from './config';
import { embeddingClient, embeddingGrpcClient } from './embedding-client.grpc';
import { featureClient, featureGrpcClient, refreshItemStats } from './feature-client.grpc';
import { ExperimentRouter } from './experiments';
import { followExperiments, pinnedModels, RegistryPinnedModels, type ModelLoaders } from './experiments.nats';
import { ImpressionBuffer, jetStreamImpressions } from './impressions.nats';
import { loadRanker, probeRanker, type ServingRanker } from './ranker.ort';
import { loadSearchModel, probeSearchModel, type ServingSearchModel } from './search-model.ort';
import { rankingGrpcService } from './ranking.grpc';
import { followUserUpdates } from './user-updates.nats';
import { loadSessionModel, probeSessionModel, type ServingSession } from './session-model';

/** The kinds an experiment arm may pin, loaded and probed as their model slots load and probe them. */
/** Caches' values live 80-100 % of their TTL: users warmed together are not all reloaded together. */
const CACHE_TTL_JITTER = 0.2;

const LOADERS: ModelLoaders = {
  ranker: { load: loadRanker, probe: probeRanker },
  search_ranker: { load: loadSearchModel, probe: probeSearchModel },
  session: { load: loadSessionModel, probe: probeSessionModel },
};

const catalogUpsert = (i: CatalogUpsert): CatalogUpsert => ({
  itemId: i.itemId,
  title: i.title,
  description: i.description,
  category: i.category,
  brand: i.brand,
  price: i.price,
  inStock: i.inStock,
});

/** A tenant's rules as the pipeline takes them (its settings, else the service's configuration). */
function tenantRules(
  r: TenantRules | undefined,
  defaultMaxPerCategory: number,
): { maxPerCategory: number; retention: RetentionRule | undefined } {
  return {
    maxPerCategory: r?.maxPerCategory || defaultMaxPerCategory,
    retention: r?.retentionBoost ? { boost: r.retentionBoost, threshold: r.churnRiskThreshold ?? 0.5 } : undefined,
  };
}

/**
 * What ranking holds for one tenant: its catalog, item statistics, caches, learned ranker, search model, session
 * model and pipeline, and its experiments' arms (their pipelines and pinned model versions) behind the router that serves it.
 */
interface TenantRanking {
  readonly catalog: Catalog;
  /**
   * User contexts and their sequence retrievals: dropped and loaded again in the background on the feature
   * service's change announcements and when a new sequence model is announced.
   */
  readonly users: UserWarmer;
  /** Refreshes item statistics soon (a change was announced). */
  poke(): void;
  readonly pipeline: RankingPipeline;
  readonly router: ExperimentRouter;
  readonly arms: ArmPipelineCache;
  readonly pinned: RegistryPinnedModels;
  /** Loads what the experiments pin: in-process kinds here, the others warmed on their services. */
  syncPins(experiments: readonly Experiment[]): void;
  readonly ranker: ModelSlot<ServingRanker>;
  readonly searchModel: ModelSlot<ServingSearchModel>;
  readonly session: ModelSlot<ServingSession>;
  stop(): Promise<void>;
}

/** The ranking service's composition root (`main.ts` runs it as a process): adapters around the ranking core. */
export async function startRanking(base: ServiceBase, config: RankingConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl, ['messages']);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.ITEMS, Streams.RANKING, Streams.MODELS, Streams.PRIVACY]);
  const credentials = outgoingCredentials(config);
  const featureChannel = featureGrpcClient(config.featureAddr, credentials);
  const embeddingChannel = embeddingGrpcClient(config.embeddingAddr, credentials);
  const churnChannel = churnGrpcClient(config.churnAddr, credentials);
  lifecycle.onShutdown('clients', () => {
    featureChannel.close();
    embeddingChannel.close();
    churnChannel.close();
  });
  const registry = await openModelRegistry(bus, config, logger);
  const impressions = new ImpressionBuffer(
    jetStreamImpressions(bus.nc, 2000),
    { maxBuffered: config.impressionBuffer, maxInFlight: 256, index: (ps) => store.messages.record(ps) },
    logger,
    base.registry,
  );
  lifecycle.onShutdown('impressions', () => impressions.close(2000));
  // Right to be forgotten: what ranking served a user (RANKING, found through the message index). Cached
  // user contexts go on every replica (followUserUpdates); ranking stores no other user data.
  await followForgetRequests(base, bus, {
    owner: 'ranking',
    ackWaitMs: config.ackWaitMs,
    forget: async (tenant, userId) => {
      await impressions.indexed();
      const erased = await eraseIndexedMessages(bus.jsm, store.messages, tenant, userId, [Streams.RANKING.name]);
      await store.scrub();
      return erased;
    },
  });
  pruneMessageIndex(base, store.messages, [Streams.RANKING]);
  const prefetchDropped = counter<'tenant'>(base.registry, {
    name: 'aisle_ranking_prefetch_dropped_total',
    help: 'User refreshes not made in the background because too many waited (the next request fetches)',
    labelNames: ['tenant'],
  });
  // Experiments (every tenant's) followed from the KV bucket; each tenant routes its own requests.
  let experiments: readonly Experiment[] = [];
  const bucket = await ExperimentBucket.open(bus.nc, { replicas: config.natsStreamReplicas });

  // One deployment serves every declared tenant: each gets its own catalog, statistics and ranker.
  const tenants = new PerTenant<TenantRanking>(base.tenants, {
    what: 'ranking',
    logger,
    create: async (tenant) => {
      const log = logger.child({ tenant });
      // The tenant's catalog, materialized from the one ingest publishes (all of it, then every update).
      const catalog = new Catalog({ maxItems: config.maxCatalogItems });
      let refused = 0;
      const catalogFeed = await followCatalog(bus.js, tenant, {
        logger: log,
        registry: base.registry,
        onItems: (items) => {
          const r = catalog.upsert(items.map(catalogUpsert));
          if (r.refused > 0)
            log.warn('catalog full: new items refused', { refused: r.refused, max: config.maxCatalogItems });
          refused += r.refused;
        },
      });
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
      // Users are cached until the feature service announces a change; retrievals until the model changes.
      const users = new CachedUserContext(features, {
        maxEntries: config.userCacheSize,
        maxWeight: config.userCacheSize,
        ttlMs: config.userCacheTtlMs,
        ttlJitter: CACHE_TTL_JITTER,
      });
      const retrieval = new CachedSequenceRetrieval(embedding, {
        maxEntries: config.retrievalCacheSize,
        ttlMs: config.retrievalCacheTtlMs,
        ttlJitter: CACHE_TTL_JITTER,
      });
      const refresh = new BackgroundRefresh({
        concurrency: config.prefetchConcurrency,
        maxPending: 10_000,
        timeoutMs: 5_000,
        onDropped: () => prefetchDropped.inc({ tenant }),
        onFailed: (err) => log.debug('background refresh failed', { err }),
      });
      const userWarmer = new UserWarmer(users, retrieval, refresh, SEQUENCE_CANDIDATES.rank);
      const coVisitation = new CachedCoVisitation(features, {
        maxEntries: 50_000,
        ttlMs: config.itemCacheMs,
        ttlJitter: CACHE_TTL_JITTER,
      });
      // Expired co-visit lists answer while the background refresh loads them again (stale-while-reload).
      coVisitation.reloader = (key, reload) => refresh.run(key, reload);
      const ports: PipelinePorts = {
        catalog,
        search: catalog.engine,
        userContext: users,
        coVisitation,
        itemStats,
        popularity: itemStats,
        sequenceRetrieval: retrieval,
        textRetrieval: embedding,
        churnRisk: new CachedChurnRisk(churnClient(tenant, churnChannel), {
          maxEntries: 100_000,
          ttlMs: 60_000,
          ttlJitter: CACHE_TTL_JITTER,
        }),
      };
      // The tenant's settings (aisle-tenants bucket) choose its rules and the learned models it uses; a
      // change applies from the next request (applySettings below).
      const settings = () => base.tenants.settings(tenant);
      const rules = () => tenantRules(settings()?.rules, config.maxPerCategory);
      const used = <M>(kind: ModelName, model: M | undefined): M | undefined =>
        usesModel(settings(), kind) ? model : undefined;
      const options = {
        tenant,
        ...rules(),
        deadlines: { deadlineMs: config.deadlineMs, dependencyTimeoutMs: config.dependencyTimeoutMs },
      };
      const pipeline = new RankingPipeline({ ...ports, impressions }, options);
      // The production configuration without impressions: what an experiment falls back to.
      const fallback = new RankingPipeline(ports, options);
      // Arms get their own pipelines (pinned model versions loaded ahead, checked like the slots below
      // check an active one); the router picks per request and publishes the exposure with the impression.
      const pinned = new RegistryPinnedModels(registry, tenant, LOADERS, log);
      // An arm's pins of kinds other services serve (sasrec, text_encoder, churn) are named on its calls.
      const pinnedClients = {
        embedding: (pins: { sasrec?: string | undefined; text_encoder?: string | undefined }) =>
          embeddingClient(tenant, embeddingChannel, pins),
        churn: (version: string) => churnClient(tenant, churnChannel, version),
        cache: {
          maxEntries: config.retrievalCacheSize,
          ttlMs: config.retrievalCacheTtlMs,
          ttlJitter: CACHE_TTL_JITTER,
        },
      };
      const arms = new ArmPipelineCache(
        (s) =>
          new RankingPipeline(pinnedPorts(ports, s.remote, pinnedClients), {
            ...options,
            // The tenant's rules, with the arm's in their place where it sets them.
            maxPerCategory: s.maxPerCategory ?? rules().maxPerCategory,
            retention: s.retention ?? rules().retention,
          }),
        pinned,
      );
      arms.retain(experiments);
      const pinWarmer = new RemotePinWarmer(pinnedClients, log);
      const syncPins = (list: readonly Experiment[]) => {
        pinned.sync(pinnedModels(list, tenant, Date.now(), isInProcess));
        pinWarmer.sync(pinnedModels(list, tenant, Date.now(), isRemote));
      };
      syncPins(experiments);
      const router = new ExperimentRouter({
        tenant,
        production: pipeline,
        fallback,
        arms,
        experiments: () => experiments,
        impressions,
        newRequestId: randomUUID,
      });
      // The learned ranker and Search's model, hot-swapped on publication; until one exists the heuristic
      // ranker and the catalog-only search scorer serve.
      const hotLoaded = async <M extends ServingModel>(
        name: ModelName,
        load: (artifact: ModelArtifact) => Promise<M>,
        probe: (model: M) => Promise<void>,
        activate: (model: M) => void,
      ): Promise<ModelSlot<M>> => {
        const slot = new ModelSlot<M>({
          registry,
          tenant,
          name,
          load,
          probe,
          activate,
          logger: log,
          metrics: base.registry,
        });
        await slot.start();
        return slot;
      };
      // Arms that pin no version of a kind serve the active one, following each swap.
      const serveRanker = (model: ServingRanker | undefined) => {
        const m = used('ranker', model);
        pipeline.setRanker(m);
        fallback.setRanker(m);
        arms.setActive('ranker', m);
      };
      const serveSearch = (model: ServingSearchModel | undefined) => {
        const m = used('search_ranker', model);
        pipeline.setSearchModel(m);
        fallback.setSearchModel(m);
        arms.setActive('search_ranker', m);
      };
      // The session model chosen on validation sessions: orders Recommend for anonymous sessions (no user,
      // session_item_ids given); until one is published those are served like any user-less request.
      const serveSession = (model: ServingSession | undefined) => {
        const m = used('session', model);
        pipeline.setSessionModel(m);
        fallback.setSessionModel(m);
        arms.setActive('session', m);
      };
      const ranker = await hotLoaded<ServingRanker>('ranker', loadRanker, probeRanker, serveRanker);
      const searchModel = await hotLoaded<ServingSearchModel>(
        'search_ranker',
        loadSearchModel,
        probeSearchModel,
        serveSearch,
      );
      const session = await hotLoaded<ServingSession>('session', loadSessionModel, probeSessionModel, serveSession);
      const applySettings = () => {
        pipeline.setRules(rules());
        fallback.setRules(rules());
        serveRanker(ranker.current);
        serveSearch(searchModel.current);
        serveSession(session.current);
        log.info('tenant settings applied', { ...rules(), models: settings()?.models ?? 'all' });
      };
      const stopSettings = base.tenants.onSettings((t) => {
        if (t === tenant) applySettings();
      });
      return {
        catalog,
        users: userWarmer,
        poke: () => statsRefresh.poke(),
        pipeline,
        router,
        arms,
        pinned,
        syncPins,
        ranker,
        searchModel,
        session,
        stop: async () => {
          refresh.stop();
          stopSettings();
          await catalogFeed.stop();
          statsRefresh.stop();
          pinned.sync([]);
          await Promise.all([ranker.stop(), searchModel.stop(), session.stop()]);
        },
      };
    },
    dispose: (t) => t.stop(),
  });
  lifecycle.onShutdown('tenants', () => tenants.stop());
  const stopExperiments = await followExperiments(bucket, logger, (list) => {
    experiments = list;
    for (const [, t] of tenants.built()) {
      t.arms.retain(list);
      t.syncPins(list);
    }
  });
  lifecycle.onShutdown('experiments watch', stopExperiments);
  await tenants.start();
  const served = (tenant: string) => tenants.built().find(([t]) => t === tenant)?.[1];
  const updates = followUserUpdates(
    bus.nc,
    {
      of: (tenant) => {
        const t = served(tenant);
        return t ? [t.users] : [];
      },
      all: () => tenants.built().map(([, t]) => t.users),
    },
    logger,
    (tenant) => served(tenant)?.poke(),
  );
  lifecycle.onShutdown('user updates', () => updates.stop());
  // A new sequence model retrieves differently: that tenant's cached retrievals go (embedding-inference swaps it).
  const sasrecWatcher = registry.watch((meta) => {
    if (meta.name === 'sasrec') served(meta.tenant)?.users.modelChanged();
  });
  lifecycle.onShutdown('sasrec watcher', () => sasrecWatcher.unsubscribe());

  base.setStatus(() => ({
    service: base.name,
    experiments: experiments.map((e) => `${e.tenant}/${e.id}`),
    tenants: Object.fromEntries(
      tenants.built().map(([tenant, t]) => [
        tenant,
        {
          catalogItems: t.catalog.size,
          ranker: t.ranker.current?.version ?? 'heuristic',
          experimentRankers: t.pinned.versions.filter((p) => p.model === 'ranker').map((p) => p.version),
          // Every version experiments pinned and ranking loaded (ranker, search_ranker, session).
          experimentModels: t.pinned.versions,
          search: t.pipeline.searchModelVersion,
          session: t.session.current?.version ?? 'none',
        },
      ]),
    ),
    // The shape every service reports its loaded versions in (the console reads it).
    models: tenants
      .built()
      .flatMap(([tenant, t]) => [
        ...(t.ranker.current ? [{ tenant, model: 'ranker', version: t.ranker.current.version }] : []),
        ...(t.searchModel.current ? [{ tenant, model: 'search_ranker', version: t.searchModel.current.version }] : []),
        ...(t.session.current ? [{ tenant, model: 'session', version: t.session.current.version }] : []),
      ]),
  }));
  const grpc = await serveGrpc(base, config, [
    rankingGrpcService(async (tenant) => (await tenants.get(tenant)).router, base),
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
