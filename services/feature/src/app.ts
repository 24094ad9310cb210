import { Streams } from '@aisle/contracts';
import { connectBus, scheduleRetention, serveGrpc, type ServiceBase, type StartedService } from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { FeatureConfig } from './config';
import { featureGrpcService } from './feature.grpc';
import { startFeatureConsumer } from './feature.nats';
import { FeatureService } from './feature.service';
import { APPLIED_MARKER_CONSUMER, catalogReader, featureRepository } from './feature.store';

/** The feature service's composition root (`main.ts` runs it as a process). */
export async function startFeature(base: ServiceBase, config: FeatureConfig): Promise<StartedService> {
  const store = await openStore(config.storeUrl);
  base.lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.EVENTS, Streams.DLQ, Streams.FEATURES]);
  const service = new FeatureService(featureRepository(store), catalogReader(store));
  const consumer = await startFeatureConsumer({
    ...base,
    service,
    js: bus.js,
    jsm: bus.jsm,
    publisher: bus.publisher,
    batchSize: config.batchSize,
    maxInFlight: config.maxInFlight,
    ackWaitMs: config.ackWaitMs,
  });
  base.lifecycle.onShutdown('consumer', () => consumer.stop());
  scheduleRetention(base, {
    what: 'applied markers',
    retentionMs: config.appliedMarkerRetentionMs,
    prune: (cutoff) => store.documents.pruneApplied(APPLIED_MARKER_CONSUMER, cutoff),
  });
  const grpc = await serveGrpc(base, config, [featureGrpcService(service, base)]);
  return { grpc, details: { store: store.kind } };
}
