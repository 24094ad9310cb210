import {
  catalogV1,
  clickstreamV1,
  ContentTypes,
  encodeItem,
  Headers,
  splitSubject,
  Streams,
  Subjects,
  type DlqSource,
} from '@aisle/contracts';
import {
  ACK,
  catalogSize,
  counter,
  extractTraceContext,
  hasTraceContext,
  header,
  SpanKind,
  startChildSpan,
  startConsumerLoop,
  type ConsumerLoop,
  type AsyncJetStreamPublisher,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Logger,
  type Outcome,
  type PubAck,
  type Registry,
  type Tracer,
} from '@aisle/runtime';
import type { MessagePosition } from '@aisle/store';
import type { IngestService, ProtoDecoder, RawInput } from './ingest.service';
import type { NormalizedEvent, NormalizedItem, Validated } from './validation';

export const protoDecoder: ProtoDecoder = {
  decodeEvent: (d) => clickstreamV1.Event.decode(d) as unknown as Record<string, unknown>,
  decodeItem: (d) => catalogV1.Item.decode(d) as unknown as Record<string, unknown>,
};

export function eventToProto(e: NormalizedEvent): clickstreamV1.Event {
  return clickstreamV1.Event.fromPartial({
    ...e,
    occurredAt: new Date(e.occurredAt),
    ingestedAt: new Date(e.ingestedAt),
  });
}

interface Deps {
  service: IngestService;
  /**
   * Records where each user's messages lie (the raw input and the normalized event), so that a forget
   * request erases them without scanning the streams.
   */
  indexPositions?: (positions: MessagePosition[]) => Promise<void>;
  /**
   * Which valid events to drop unstored: those of forgotten users that occurred before the request (in
   * flight when it came, or replayed). Acknowledged, never republished nor dead-lettered (that would keep them).
   */
  forgotten?: (events: ReadonlyArray<NormalizedEvent | undefined>) => Promise<ReadonlySet<number>>;
  /** Erases messages (a dropped event's raw copy) from their streams. */
  erase?: (positions: ReadonlyArray<{ stream: string; seq: number }>) => Promise<unknown>;
  publisher: AsyncJetStreamPublisher;
  tracer: Tracer;
  logger: Logger;
  registry: Registry;
}

function counters(registry: Registry) {
  const get = (name: string, help: string) => counter<'source'>(registry, { name, help, labelNames: ['source'] });
  return {
    accepted: get('aisle_ingest_accepted_total', 'Valid input messages'),
    rejected: get('aisle_ingest_rejected_total', 'Input sent to the dead-letter stream'),
    stored: get('aisle_ingest_stored_total', 'Newly stored events/items (duplicates excluded)'),
    forgotten: get(
      'aisle_ingest_forgotten_dropped_total',
      'Events of forgotten users that occurred before the request (in flight or replayed), dropped unstored',
    ),
  };
}

/** Stands in for a dropped event when the batch is stored: not stored, and (unlike a rejection) acknowledged. */
const DROPPED = { ok: false, reason: 'dropped' } as const;

/**
 * The per-batch pipeline for one raw stream: validate -> store (throws = retry) -> republish valid
 * input -> ack; invalid input comes back as `term` with its reason, which the consumer loop
 * dead-letters. Publishes carry de-duplication ids, so a redelivered batch produces no duplicates
 * downstream.
 */
function pipeline<T extends NormalizedEvent | NormalizedItem>(
  deps: Deps,
  source: DlqSource,
  validate: (inputs: RawInput[]) => Array<Validated<T>> | Promise<Array<Validated<T>>>,
  store: (results: Array<Validated<T>>) => Promise<{ stored: number; results: ReadonlyArray<Validated<T>> }>,
  republish: (value: T) => { subject: string; data: Uint8Array; msgId: string; tenant: string; userId?: string },
  subject: (m: JsMsg) => Pick<RawInput, 'subjectType' | 'subjectTenant'>,
  drop?: (values: ReadonlyArray<T | undefined>) => Promise<ReadonlySet<number>>,
): (msgs: readonly JsMsg[]) => Promise<Outcome[]> {
  const metrics = counters(deps.registry);
  return async (msgs) => {
    const inputs: RawInput[] = msgs.map((m) => ({
      data: m.data,
      contentType: header(m.headers, Headers.contentType),
      ...subject(m),
    }));
    const validated = await validate(inputs);
    const dropped = drop ? await drop(validated.map((r) => (r.ok ? r.value : undefined))) : new Set<number>();
    const { stored, results } = await store(validated.map((r, i) => (dropped.has(i) ? DROPPED : r)));
    const publishes: Array<Promise<PubAck>> = [];
    const positions: MessagePosition[] = [];
    const outcomes: Outcome[] = msgs.map(() => ACK);
    let rejected = 0;
    results.forEach((r, i) => {
      const m = msgs[i] as JsMsg;
      if (dropped.has(i)) return;
      if (r.ok) {
        const out = republish(r.value);
        const headers = { [Headers.contentType]: ContentTypes.protobuf, [Headers.tenant]: out.tenant };
        if (hasTraceContext(m.headers)) {
          // Continue the producer's trace through this hop; untraced bulk traffic stays span-free.
          const { span, context } = startChildSpan(deps.tracer, `ingest ${source}`, extractTraceContext(m.headers), {
            kind: SpanKind.CONSUMER,
            attributes: { 'messaging.system': 'nats', 'messaging.destination.name': m.subject },
          });
          publishes.push(
            deps.publisher
              .publish(out.subject, out.data, { msgId: out.msgId, headers, traceContext: context })
              .finally(() => span.end()),
          );
        } else {
          publishes.push(deps.publisher.publish(out.subject, out.data, { msgId: out.msgId, headers, noTrace: true }));
        }
        const { userId, tenant } = out;
        if (userId && deps.indexPositions) {
          const i = publishes.length - 1;
          publishes[i] = (publishes[i] as Promise<PubAck>).then((ack) => {
            positions.push({ tenant, userId, stream: m.info.stream, seq: m.seq });
            positions.push({ tenant, userId, stream: ack.stream, seq: ack.seq });
            return ack;
          });
        }
      } else {
        rejected++;
        deps.logger.debug('rejected input', { subject: m.subject, reason: r.reason, seq: m.seq });
        // The loop dead-letters it, with the reason made safe for a header.
        outcomes[i] = { kind: 'term', reason: r.reason };
      }
    });
    await Promise.all(publishes);
    if (dropped.size > 0)
      await deps.erase?.(
        [...dropped].map((i) => ({ stream: (msgs[i] as JsMsg).info.stream, seq: (msgs[i] as JsMsg).seq })),
      );
    if (positions.length > 0) await deps.indexPositions?.(positions);
    metrics.accepted.inc({ source }, results.length - rejected - dropped.size);
    metrics.rejected.inc({ source }, rejected);
    metrics.forgotten.inc({ source }, dropped.size);
    metrics.stored.inc({ source }, stored);
    return outcomes;
  };
}

/** `aisle.clickstream.v1.<type>[.<tenant>]` */
function clickstreamSubject(m: JsMsg): Pick<RawInput, 'subjectType' | 'subjectTenant'> {
  const s = splitSubject(m.subject, 'aisle.clickstream.v1');
  return { subjectType: s?.name, subjectTenant: s?.tenant };
}

/** The accepted catalog's message for one item (stream ITEMS; de-duplicated on its version). */
function acceptedItem(i: NormalizedItem): { subject: string; data: Uint8Array; msgId: string; tenant: string } {
  return {
    subject: Subjects.item(i.tenant, i.itemId),
    data: encodeItem(i),
    msgId: `item:${i.tenant}:${i.itemId}:${i.updatedAt}`,
    tenant: i.tenant,
  };
}

/**
 * Migration and repair: when stream ITEMS holds fewer of the tenant's items than the store (the first
 * start after ITEMS took over from the shared `items` table, or a lost stream), publishes the tenant's
 * stored catalog there again. Items ITEMS already holds are replaced by the same version (it keeps one
 * message per item). Returns how many items it published.
 */
export async function republishCatalog(
  deps: Pick<Deps, 'publisher' | 'logger'> & { js: JetStreamClient },
  items: { count(tenant: string): Promise<number>; scan(tenant: string): AsyncIterable<NormalizedItem> },
  tenant: string,
): Promise<number> {
  const [stored, streamed] = await Promise.all([items.count(tenant), catalogSize(deps.js, tenant)]);
  if (streamed >= stored) return 0;
  deps.logger.info('catalog: republishing the stored catalog on ITEMS', { tenant, stored, streamed });
  let published = 0;
  const acks: Array<Promise<PubAck>> = [];
  for await (const i of items.scan(tenant)) {
    const m = acceptedItem(i);
    const headers = { [Headers.contentType]: ContentTypes.protobuf, [Headers.tenant]: m.tenant };
    acks.push(deps.publisher.publish(m.subject, m.data, { msgId: m.msgId, headers, noTrace: true }));
    if (acks.length >= 500) await Promise.all(acks.splice(0));
    published++;
  }
  await Promise.all(acks);
  return published;
}

export async function startIngestConsumers(
  deps: Deps & {
    js: JetStreamClient;
    jsm: JetStreamManager;
    batchSize: number;
    maxInFlight: number;
    ackWaitMs: number;
  },
): Promise<ConsumerLoop[]> {
  const { service } = deps;
  const clickstream = pipeline<NormalizedEvent>(
    deps,
    'clickstream',
    (inputs) => service.validateEvents(inputs),
    (results) => service.storeEvents(results),
    (e) => ({
      subject: Subjects.events(e.type),
      data: clickstreamV1.Event.encode(eventToProto(e)).finish(),
      // Events and items share EVENTS' de-duplication window: distinct prefixes keep a crafted event id
      // (tenant `item`, id `default:sku1:<updatedAt>`) from suppressing a catalog update.
      msgId: `event:${e.tenant}:${e.eventId}`,
      tenant: e.tenant,
      userId: e.userId,
    }),
    clickstreamSubject,
    deps.forgotten,
  );
  const catalog = pipeline<NormalizedItem>(
    deps,
    'catalog',
    (inputs) => service.admitItems(service.validateItems(inputs)),
    (results) => service.storeItems(results),
    // The stored version of each accepted item (see IngestService.storeItems) onto the accepted catalog.
    acceptedItem,
    // `aisle.catalog.v1.upsert[.<tenant>]` (the consumer takes the whole stream: other subjects are refused).
    (m) => {
      const s = splitSubject(m.subject, 'aisle.catalog.v1');
      return { subjectType: s?.name, subjectTenant: s?.tenant };
    },
  );
  // Two batches at once: one validates and stores while the other waits for JetStream acks. Republish
  // order across batches does not matter downstream (features are order-independent).
  const common = {
    js: deps.js,
    jsm: deps.jsm,
    concurrency: 2,
    batchSize: deps.batchSize,
    maxInFlight: deps.maxInFlight,
    ackWaitMs: deps.ackWaitMs,
    logger: deps.logger,
    registry: deps.registry,
  };
  return Promise.all([
    startConsumerLoop({
      ...common,
      stream: Streams.CLICKSTREAM.name,
      durable: 'ingest-clickstream',
      filterSubject: Subjects.clickstreamAll,
      handleBatch: clickstream,
      deadLetter: {
        publisher: deps.publisher,
        subject: Subjects.dlq('clickstream'),
        by: 'ingest',
        // Rejected events that name a user: the raw message and its dead letter are indexed for forgetting.
        ...(deps.indexPositions && {
          index: {
            userOf: (m: JsMsg) =>
              service.userNamedBy({
                data: m.data,
                contentType: header(m.headers, Headers.contentType),
                subjectTenant: clickstreamSubject(m).subjectTenant,
              }),
            record: deps.indexPositions,
          },
        }),
      },
    }),
    startConsumerLoop({
      ...common,
      stream: Streams.CATALOG.name,
      durable: 'ingest-catalog',
      filterSubject: Subjects.catalogAll,
      handleBatch: catalog,
      deadLetter: { publisher: deps.publisher, subject: Subjects.dlq('catalog'), by: 'ingest' },
    }),
  ]);
}
