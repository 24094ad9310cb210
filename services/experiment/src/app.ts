import { Streams } from '@aisle/contracts';
import {
  connectBus,
  followForgetRequests,
  ForgottenUsers,
  ModelRegistry,
  scheduleRetention,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { ExperimentConfig } from './config';
import { experimentGrpcService } from './experiment.grpc';
import {
  DefinitionCache,
  definitionStore,
  ExperimentBucket,
  modelActivation,
  resultPublisher,
  ServedProgress,
  startOutcomeConsumer,
  startServedConsumer,
  watchServedBacklog,
} from './experiment.nats';
import { ExperimentService } from './experiment.service';
import { JoinRepository } from './experiment.store';
import { runPeriodically } from './periodic';

export const SERVED_DURABLE = 'experiment-served';

/** The experiment service's composition root (`main.ts` runs it as a process). */
export async function startExperiment(base: ServiceBase, config: ExperimentConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl, ['documents', 'forgotten']);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [
    Streams.RANKING,
    Streams.EVENTS,
    Streams.EXPERIMENTS,
    Streams.MODELS,
    Streams.PRIVACY,
  ]);
  const bucket = await ExperimentBucket.open(bus.nc, { replicas: config.natsStreamReplicas });
  const definitions = new DefinitionCache();
  const stopWatch = await bucket.watch((all) => definitions.set(all.values()), logger);
  lifecycle.onShutdown('definitions watch', stopWatch);

  const repository = new JoinRepository(store.documents);
  const registry = await ModelRegistry.open(bus.nc, { replicas: config.natsStreamReplicas });
  const service = new ExperimentService(
    definitionStore(bucket),
    repository,
    resultPublisher(bus.publisher),
    () => Date.now(),
    modelActivation(registry, bus.publisher),
  );
  const progress = new ServedProgress();
  const common = {
    js: bus.js,
    jsm: bus.jsm,
    logger,
    registry: base.registry,
    repository,
    batchSize: config.batchSize,
    maxInFlight: config.maxInFlight,
    ackWaitMs: config.ackWaitMs,
    publisher: bus.publisher,
  };
  // Responses served to a forgotten user before the request (in flight, or replayed) are not kept.
  const forgotten = ForgottenUsers.open(config, store.forgotten, logger);
  const served = await startServedConsumer({
    ...common,
    progress,
    durable: SERVED_DURABLE,
    forgotten: (users) => forgotten.dropped(users),
  });
  lifecycle.onShutdown('served consumer', () => served.stop());
  const stopBacklog = watchServedBacklog(bus.jsm, SERVED_DURABLE, progress, 1000, logger);
  lifecycle.onShutdown('served backlog check', stopBacklog);
  const outcomes = await startOutcomeConsumer({
    ...common,
    progress,
    definitions,
    servedGraceMs: config.servedGraceMs,
    retryDelayMs: config.outcomeRetryMs,
  });
  lifecycle.onShutdown('outcome consumer', () => outcomes.stop());

  // Right to be forgotten: the user's stored requests (impressions with their outcomes; ranking erases the
  // served messages themselves from RANKING). Results stay as computed: aggregates over units, no user id.
  // The marker first (shared with ingest and feature where the store is), so that what is still in flight
  // is dropped, not stored after the erasure.
  await followForgetRequests(base, bus, {
    owner: 'experiment',
    ackWaitMs: config.ackWaitMs,
    forget: async (tenant, userId) => {
      await forgotten.mark(tenant, userId);
      const rows = await repository.forgetUser(tenant, userId);
      await store.scrub();
      return rows;
    },
  });

  scheduleRetention(base, {
    what: 'forget markers',
    retentionMs: config.forgetMarkerRetentionMs,
    prune: (cutoff) => store.forgotten.pruneBefore(cutoff),
  });

  const stopAnalysis = runPeriodically(
    config.analysisIntervalMs,
    async () => {
      const report = await service.analyzeAll();
      for (const s of report.stopped) logger.warn('experiment stopped by a guardrail', s);
    },
    (err) => logger.warn('analysis round failed', { err }),
  );
  lifecycle.onShutdown('analysis', stopAnalysis);

  const grpc = await serveGrpc(base, config, [experimentGrpcService(service, base)]);
  return { grpc, details: { store: store.kind } };
}
