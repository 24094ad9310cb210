import { Streams } from '@aisle/contracts';
import { connectBus, scheduleRetention, serveGrpc, type ServiceBase, type StartedService } from '@aisle/runtime';
import { openStore } from '@aisle/store';
import type { IngestConfig } from './config';
import { ingestGrpcService } from './ingest.grpc';
import { protoDecoder, startIngestConsumers } from './ingest.nats';
import { IngestService } from './ingest.service';

/** The ingest service's composition root (`main.ts` runs it as a process). */
export async function startIngest(base: ServiceBase, config: IngestConfig): Promise<StartedService> {
  const store = await openStore(config.storeUrl);
  base.lifecycle.onShutdown('store', () => store.close());
  // Without NATS ingest can neither accept (Track publishes) nor deliver: health says so.
  const bus = await connectBus(base, config, [Streams.CLICKSTREAM, Streams.CATALOG, Streams.EVENTS, Streams.DLQ], {
    healthNeedsNats: true,
  });
  const service = new IngestService(
    {
      insertEvents: (e) => store.events.insertMany(e),
      upsertItems: (i) => store.items.upsertMany(i),
      catalogState: async (tenant, ids, skipCount) => ({
        count: skipCount ? -1 : await store.items.count({ tenant }),
        existing: new Set((await store.items.getMany(tenant, ids)).keys()),
      }),
    },
    protoDecoder,
    Date.now,
    config.maxItemsPerTenant,
    (tenant) => base.tenants.has(tenant),
  );
  const consumers = await startIngestConsumers({
    ...base,
    service,
    js: bus.js,
    jsm: bus.jsm,
    publisher: bus.publisher,
    batchSize: config.batchSize,
    maxInFlight: config.maxInFlight,
    ackWaitMs: config.ackWaitMs,
  });
  scheduleRetention(base, {
    what: 'events',
    retentionMs: config.eventRetentionMs,
    prune: (cutoff) => store.events.deleteBefore(cutoff),
  });
  base.lifecycle.onShutdown('consumers', async () => {
    await Promise.all(consumers.map((c) => c.stop()));
  });
  const grpc = await serveGrpc(base, config, [
    ingestGrpcService(service, bus, base, { maxEvents: config.trackMaxEvents }),
  ]);
  return { grpc, details: { store: store.kind } };
}
