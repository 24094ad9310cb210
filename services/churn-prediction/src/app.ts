import { Streams } from '@aisle/contracts';
import {
  connectBus,
  eraseIndexedMessages,
  pruneMessageIndex,
  followForgetRequests,
  ModelSlot,
  openModelRegistry,
  outgoingCredentials,
  PerTenant,
  PinnedVersions,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import { featureActivitySource } from './activity.grpc';
import { churnGrpcService } from './churn.grpc';
import { alertPublisher, startScoringConsumer } from './churn.nats';
import { ortChurnModel, probeChurnModel, type ServingChurnModel } from './churn.ort';
import { ChurnService } from './churn.service';
import type { ChurnConfig } from './config';
import { scoreRepository } from './scores.store';

const SERVICE = 'aisle.churn.v1.ChurnService';

/** One tenant's scorer and model. */
interface TenantChurn {
  readonly service: ChurnService;
  readonly pinned: PinnedVersions<ServingChurnModel>;
  stop(): Promise<void>;
}

/** The churn-prediction service's composition root (`main.ts` runs it as a process). */
export async function startChurn(base: ServiceBase, config: ChurnConfig): Promise<StartedService> {
  const { logger, lifecycle, readiness } = base;
  const store = await openStore(config.storeUrl, ['churnScores', 'messages']);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.FEATURES, Streams.CHURN, Streams.MODELS, Streams.PRIVACY]);
  const registry = await openModelRegistry(bus, config, logger);
  const credentials = outgoingCredentials(config);

  // Health follows the tenants together: SERVING while some tenant has a usable model (a tenant without
  // one answers FAILED_PRECONDITION on its own calls, and never makes another tenant's calls fail).
  const report = (): void => {
    const built = tenants.built().map(([, t]) => t.service);
    const usable = built.some((s) => s.modelVersion !== undefined && s.problem === undefined);
    const problem = built.find((s) => s.problem !== undefined)?.problem;
    readiness.set('model', usable, { service: SERVICE, reason: problem ?? 'no churn model published yet' });
  };
  const rescore = async (tenant: string, service: ChurnService, why: string) => {
    if (!service.modelVersion) return;
    const r = await service.rescoreAll(config.batchSize);
    logger.info('rescored users', { tenant, why, ...r });
  };

  // One deployment scores every declared tenant: each gets its own model, scores and alerts.
  const tenants: PerTenant<TenantChurn> = new PerTenant<TenantChurn>(base.tenants, {
    what: 'churn',
    logger,
    create: async (tenant) => {
      const log = logger.child({ tenant });
      const activity = featureActivitySource({ address: config.featureAddr, tenant, credentials, timeoutMs: 5000 });
      // Versions other than the active one that requests name (experiment arms' pins), a few at a time.
      const pinned = new PinnedVersions<ServingChurnModel>({
        registry,
        tenant,
        name: 'churn',
        capacity: config.pinnedVersions,
        load: ortChurnModel,
        probe: probeChurnModel,
        logger: log,
      });
      const service = new ChurnService(
        activity,
        scoreRepository(store, tenant),
        alertPublisher(bus, tenant, log, base.registry, (ps) => store.messages.record(ps)),
        {
          threshold: config.threshold,
          hysteresis: config.hysteresis,
          versions: pinned,
          onModelProblem: (problem) => {
            if (problem) log.error('churn model unusable; not scoring until a new one is published', { problem });
            report();
          },
        },
      );
      const model = new ModelSlot<ServingChurnModel>({
        registry,
        tenant,
        name: 'churn',
        load: ortChurnModel,
        probe: probeChurnModel,
        activate: (m) => {
          service.setModel(m);
          report();
          void rescore(tenant, service, 'new model').catch((err: unknown) => log.warn('rescoring failed', { err }));
        },
        logger: log,
        metrics: base.registry,
      });
      await model.start();
      return {
        service,
        pinned,
        stop: async () => {
          await Promise.all([model.stop(), pinned.stop()]);
          activity.close();
        },
      };
    },
    dispose: (t) => t.stop(),
  });

  const grpc = await serveGrpc(base, config, [
    churnGrpcService(async (tenant) => (await tenants.get(tenant)).service, base),
  ]);
  lifecycle.onShutdown('tenants', () => tenants.stop());
  await tenants.start();
  report();

  const consumer = await startScoringConsumer({
    bus,
    serviceOf: async (tenant) => (base.tenants.has(tenant) ? (await tenants.get(tenant)).service : undefined),
    batchSize: config.batchSize,
    ackWaitMs: config.ackWaitMs,
    logger,
    registry: base.registry,
  });
  lifecycle.onShutdown('consumer', () => consumer.stop());
  // Right to be forgotten: the user's stored score (a later Predict scores them afresh, from nothing) and
  // their alerts on CHURN (found through the message index).
  await followForgetRequests(base, bus, {
    owner: 'churn-prediction',
    ackWaitMs: config.ackWaitMs,
    forget: async (tenant, userId) => {
      const n = await store.churnScores.deleteMany(tenant, [userId]);
      const erased = await eraseIndexedMessages(bus.jsm, store.messages, tenant, userId, [Streams.CHURN.name]);
      await store.scrub();
      return n + erased;
    },
  });
  pruneMessageIndex(base, store.messages, [Streams.CHURN]);
  const timer = setInterval(() => {
    for (const [tenant, t] of tenants.built())
      void rescore(tenant, t.service, 'periodic').catch((err: unknown) =>
        logger.warn('periodic rescoring failed', { tenant, err }),
      );
  }, config.rescoreIntervalMs);
  lifecycle.onShutdown('rescoring', () => clearInterval(timer));
  const models = () =>
    tenants
      .built()
      .flatMap(([tenant, t]) =>
        t.service.modelVersion ? [{ tenant, model: 'churn', version: t.service.modelVersion }] : [],
      );
  base.setStatus(() => ({
    service: base.name,
    tenants: Object.fromEntries(
      tenants.built().map(([tenant, t]) => [
        tenant,
        {
          model: t.service.modelVersion ?? null,
          model_problem: t.service.problem ?? null,
          // Versions loaded for requests that name one (experiment arms' pins), least recently used first.
          pinned: t.pinned.versions(),
        },
      ]),
    ),
    threshold: config.threshold,
    // The shape every service reports its loaded versions in (the console reads it).
    models: models(),
  }));
  return { grpc, details: { models: models() } };
}
