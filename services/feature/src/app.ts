import { Streams } from '@aisle/contracts';
import {
  connectBus,
  eraseIndexedMessages,
  eraseMessages,
  pruneMessageIndex,
  followForgetRequests,
  ForgottenUsers,
  scheduleRetention,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { FeatureConfig } from './config';
import { featureGrpcService } from './feature.grpc';
import { startFeatureConsumer } from './feature.nats';
import { FeatureService } from './feature.service';
import { MaterializedCatalog } from './catalog.nats';
import { APPLIED_MARKER_CONSUMER, featureRepository } from './feature.store';

/** The feature service's composition root (`main.ts` runs it as a process). */
export async function startFeature(base: ServiceBase, config: FeatureConfig): Promise<StartedService> {
  const store = await openStore(config.storeUrl, ['documents', 'messages', 'forgotten']);
  base.lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [
    Streams.EVENTS,
    Streams.ITEMS,
    Streams.DLQ,
    Streams.FEATURES,
    Streams.PRIVACY,
  ]);
  // The catalog ingest owns, materialized here (every declared tenant's, before events are applied).
  const catalog = new MaterializedCatalog(base, bus.js);
  base.lifecycle.onShutdown('catalog', () => catalog.stop());
  await catalog.start();
  const service = new FeatureService(featureRepository(store), catalog);
  const forgotten = ForgottenUsers.open(config, store.forgotten, base.logger);
  const consumer = await startFeatureConsumer({
    ...base,
    service,
    js: bus.js,
    jsm: bus.jsm,
    publisher: bus.publisher,
    indexPositions: (ps) => store.messages.record(ps),
    forgotten: (events) => forgotten.dropped(events),
    erase: (positions) => eraseMessages(bus.jsm, positions),
    batchSize: config.batchSize,
    maxInFlight: config.maxInFlight,
    ackWaitMs: config.ackWaitMs,
  });
  base.lifecycle.onShutdown('consumer', () => consumer.stop());
  // Right to be forgotten: the user's features, co-visit contributions, applied markers and notifications.
  await followForgetRequests(base, bus, {
    owner: 'feature',
    ackWaitMs: config.ackWaitMs,
    forget: async (tenant, userId) => {
      // First the marker: the user's events still in flight are dropped, not applied after the erasure.
      await forgotten.mark(tenant, userId);
      const { records, eventIds } = await service.forgetUser(tenant, userId);
      const markers = await store.documents.forgetApplied(APPLIED_MARKER_CONSUMER, tenant, eventIds);
      // DLQ: events of the user that this consumer gave up on.
      const erased = await eraseIndexedMessages(bus.jsm, store.messages, tenant, userId, [
        Streams.FEATURES.name,
        Streams.DLQ.name,
      ]);
      await store.scrub();
      return records + markers + erased;
    },
  });
  pruneMessageIndex(base, store.messages, [Streams.FEATURES, Streams.DLQ]);
  scheduleRetention(base, {
    what: 'forget markers',
    retentionMs: config.forgetMarkerRetentionMs,
    prune: (cutoff) => store.forgotten.pruneBefore(cutoff),
  });
  scheduleRetention(base, {
    what: 'applied markers',
    retentionMs: config.appliedMarkerRetentionMs,
    prune: (cutoff) => store.documents.pruneApplied(APPLIED_MARKER_CONSUMER, cutoff),
  });
  const grpc = await serveGrpc(base, config, [featureGrpcService(service, { ...base, tenantRateLimits: false })]);
  return { grpc, details: { store: store.kind } };
}
