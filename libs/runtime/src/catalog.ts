import { decodeItem, Streams, Subjects, type Item } from '@aisle/contracts';
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { Registry } from 'prom-client';
import type { Logger } from './logger';
import { counter } from './metrics';

/** A tenant's catalog being followed; `stop` ends it (idempotent). */
export interface CatalogFeed {
  /** Items handed over so far (replay and updates). */
  readonly received: number;
  stop(): Promise<void>;
}

export interface FollowCatalogOptions {
  /** Takes a batch of the tenant's items (each the latest version ingest accepted); errors are logged. */
  onItems: (items: Item[]) => void | Promise<void>;
  logger: Logger;
  registry?: Registry;
  /** Stop after the replay: read the catalog once (a job). */
  once?: boolean;
  /** Items per `onItems` call during the replay (default 500). */
  batchSize?: number;
}

/**
 * Materializes one tenant's accepted catalog: ingest, the catalog's only owner, publishes the latest
 * version of each item it accepts on stream ITEMS (`Subjects.item`, one message per item). This replays
 * every item the stream holds for the tenant, resolving once they are all handed over (a service started
 * long after the catalog was written gets all of it), then hands over updates as ingest publishes them,
 * until stopped. One ordered consumer (in memory, nothing to acknowledge, recreated from where it was
 * after a gap or a NATS restart) per call. A payload that does not decode is skipped and counted: only
 * ingest may publish on ITEMS (NATS permissions), so it is a bug to report, not input to dead-letter.
 */
export async function followCatalog(
  js: JetStreamClient,
  tenant: string,
  opts: FollowCatalogOptions,
): Promise<CatalogFeed> {
  const log = opts.logger.child({ tenant });
  const undecodable = opts.registry
    ? counter(opts.registry, {
        name: 'aisle_catalog_undecodable_total',
        help: 'ITEMS messages that did not decode as a catalog item (skipped)',
      })
    : undefined;
  const batchSize = opts.batchSize ?? 500;
  const consumer = await js.consumers.get(Streams.ITEMS.name, {
    filter_subjects: Subjects.itemsOf(tenant),
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  // The consumer's pending count when it was created: how many items the replay hands over.
  const initial = (await consumer.info(true)).num_pending;
  const messages = await consumer.consume({ max_messages: Math.max(batchSize, 100) });
  let received = 0;
  let stopped = false;
  let replayed!: () => void;
  const replay = new Promise<void>((resolve) => (replayed = resolve));
  let batch: Item[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const items = batch;
    batch = [];
    received += items.length;
    try {
      await opts.onItems(items);
    } catch (err) {
      log.error('catalog: applying items failed', { items: items.length, err });
    }
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await messages.close().catch(() => undefined);
    await consumer.delete().catch(() => undefined);
  };
  let caughtUp = initial === 0;
  const loop = (async () => {
    for await (const m of messages) {
      try {
        const item = decodeItem(m.data);
        // The payload names its tenant; the subject already did, and the payload may not contradict it.
        if (item.tenant === tenant) batch.push(item);
        else throw new Error(`tenant '${item.tenant}' on the subject of tenant '${tenant}'`);
      } catch (err) {
        undecodable?.inc();
        log.warn('catalog: skipped a message that is not a catalog item of this tenant', { seq: m.seq, err });
      }
      if (m.info.pending > 0 && batch.length < batchSize) continue;
      await flush();
      if (!caughtUp && m.info.pending === 0) {
        caughtUp = true;
        replayed();
      }
    }
  })().catch((err: unknown) => log.error('catalog: following stopped', { err }));
  if (caughtUp) replayed();
  await Promise.race([replay, loop]);
  log.info('catalog: replayed', { items: received });
  if (opts.once) await stop();
  return {
    get received() {
      return received;
    },
    stop,
  };
}

/** How many items stream ITEMS holds for the tenant (one short-lived consumer; nothing is read). */
export async function catalogSize(js: JetStreamClient, tenant: string): Promise<number> {
  const consumer = await js.consumers.get(Streams.ITEMS.name, {
    filter_subjects: Subjects.itemsOf(tenant),
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  try {
    return (await consumer.info(true)).num_pending;
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
