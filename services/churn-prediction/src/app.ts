import { Streams } from '@aisle/contracts';
import {
  connectBus,
  ModelSlot,
  openModelRegistry,
  outgoingCredentials,
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

/** The churn-prediction service's composition root (`main.ts` runs it as a process). */
export async function startChurn(base: ServiceBase, config: ChurnConfig): Promise<StartedService> {
  const { logger, lifecycle, readiness } = base;
  const { tenant } = config;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.FEATURES, Streams.CHURN, Streams.MODELS]);
  const activity = featureActivitySource({
    address: config.featureAddr,
    tenant,
    credentials: outgoingCredentials(config),
    timeoutMs: 5000,
  });
  lifecycle.onShutdown('feature client', () => activity.close());

  const service = new ChurnService(
    activity,
    scoreRepository(store, tenant),
    alertPublisher(bus, tenant, logger, base.registry),
    {
      threshold: config.threshold,
      hysteresis: config.hysteresis,
      onModelProblem: (problem) => {
        if (problem) logger.error('churn model unusable; not serving until a new one is published', { problem });
        readiness.set('model', problem === undefined, { service: SERVICE, reason: problem ?? '' });
      },
    },
  );

  const grpc = await serveGrpc(base, config, [churnGrpcService(service, base)]);
  const rescore = async (why: string) => {
    if (!service.modelVersion) return;
    const r = await service.rescoreAll(config.batchSize);
    logger.info('rescored users', { why, ...r });
  };
  const model = new ModelSlot<ServingChurnModel>({
    registry: await openModelRegistry(bus, config, logger),
    tenant,
    name: 'churn',
    load: ortChurnModel,
    probe: probeChurnModel,
    activate: (m) => {
      service.setModel(m);
      grpc.setServiceServing(SERVICE, true);
      void rescore('new model').catch((err: unknown) => logger.warn('rescoring failed', { err }));
    },
    logger,
    metrics: base.registry,
  });
  lifecycle.onShutdown('churn model', () => model.stop());
  await model.start();

  const consumer = await startScoringConsumer({
    bus,
    service,
    tenant,
    batchSize: config.batchSize,
    ackWaitMs: config.ackWaitMs,
    logger,
    registry: base.registry,
  });
  lifecycle.onShutdown('consumer', () => consumer.stop());
  const timer = setInterval(
    () => void rescore('periodic').catch((err: unknown) => logger.warn('periodic rescoring failed', { err })),
    config.rescoreIntervalMs,
  );
  lifecycle.onShutdown('rescoring', () => clearInterval(timer));
  base.setStatus(() => ({
    service: base.name,
    model: service.modelVersion ?? null,
    model_problem: service.problem ?? null,
    threshold: config.threshold,
    // The shape every service reports its loaded versions in (the console reads it).
    models: service.modelVersion ? [{ model: 'churn', version: service.modelVersion }] : [],
  }));
  return {
    grpc,
    details: { model: service.modelVersion ?? null },
    notReady: service.modelVersion ? [] : [SERVICE],
  };
}
