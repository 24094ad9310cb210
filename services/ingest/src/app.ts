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
import type { IngestConfig } from './config';
import { ingestGrpcService } from './ingest.grpc';
import { protoDecoder, republishCatalog, startIngestConsumers } from './ingest.nats';
import { IngestService } from './ingest.service';

/** The ingest service's composition root (`main.ts` runs it as a process). */
export async function startIngest(base: ServiceBase, config: IngestConfig): Promise<StartedService> {
  const store = await openStore(config.storeUrl, ['events', 'items', 'messages', 'forgotten']);
  base.lifecycle.onShutdown('store', () => store.close());
  // Without NATS ingest can neither accept (Track publishes) nor deliver: health says so.
  const bus = await connectBus(
    base,
    config,
    [Streams.CLICKSTREAM, Streams.CATALOG, Streams.EVENTS, Streams.ITEMS, Streams.DLQ, Streams.PRIVACY],
    {
      healthNeedsNats: true,
    },
  );
  const service = new IngestService(
    {
      insertEvents: (e) => store.events.insertMany(e),
      upsertItems: (i) => store.items.upsertMany(i),
      currentItems: (tenant, ids) => store.items.getMany(tenant, ids),
      catalogState: async (tenant, ids, skipCount) => ({
        count: skipCount ? -1 : await store.items.count({ tenant }),
        existing: new Set((await store.items.getMany(tenant, ids)).keys()),
      }),
    },
    protoDecoder,
    {
      maxItemsPerTenant: config.maxItemsPerTenant,
      isDeclared: (tenant) => base.tenants.has(tenant),
      requireSubjectTenant:
        config.subjectTenant === 'required' || (config.subjectTenant === 'auto' && config.deployment === 'production'),
    },
  );
  // The accepted catalog on ITEMS, which the other services materialize, must hold what the store holds
  // (after an upgrade from the shared `items` table): republished before any new item can race it.
  const items = { count: (tenant: string) => store.items.count({ tenant }), scan: (t: string) => store.items.scan(t) };
  for (const tenant of base.tenants.list()) await republishCatalog({ ...base, ...bus }, items, tenant);
  const forgotten = ForgottenUsers.open(config, store.forgotten, base.logger);
  const consumers = await startIngestConsumers({
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
  // Right to be forgotten: the user's raw and normalized events, in the store and in the streams.
  await followForgetRequests(base, bus, {
    owner: 'ingest',
    ackWaitMs: config.ackWaitMs,
    forget: async (tenant, userId) => {
      // First the marker: from now on the user's earlier events are dropped, not stored again.
      await forgotten.mark(tenant, userId);
      // DLQ: rejected events that named the user (their raw copies in CLICKSTREAM are indexed too).
      const erased = await eraseIndexedMessages(bus.jsm, store.messages, tenant, userId, [
        Streams.CLICKSTREAM.name,
        Streams.EVENTS.name,
        Streams.DLQ.name,
      ]);
      const { deleted } = await store.events.forgetUser(tenant, userId);
      await store.scrub();
      return erased + deleted;
    },
  });
  scheduleRetention(base, {
    what: 'events',
    retentionMs: config.eventRetentionMs,
    prune: (cutoff) => store.events.deleteBefore(cutoff),
  });
  pruneMessageIndex(base, store.messages, [Streams.CLICKSTREAM, Streams.EVENTS, Streams.DLQ]);
  scheduleRetention(base, {
    what: 'forget markers',
    retentionMs: config.forgetMarkerRetentionMs,
    prune: (cutoff) => store.forgotten.pruneBefore(cutoff),
  });
  base.lifecycle.onShutdown('consumers', async () => {
    await Promise.all(consumers.map((c) => c.stop()));
  });
  const grpc = await serveGrpc(base, config, [
    ingestGrpcService(service, bus, base, { maxEvents: config.trackMaxEvents }),
  ]);
  return { grpc, details: { store: store.kind } };
}
