import { clickstreamV1, ContentTypes, featureV1, Headers, isEventType, Streams, Subjects } from '@aisle/contracts';
import {
  ACK,
  counter,
  decodeOrReason,
  extractTraceContext,
  hasTraceContext,
  eventUserOf,
  SpanKind,
  startChildSpan,
  startConsumerLoop,
  type Context,
  type ConsumerLoop,
  type AsyncJetStreamPublisher,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Logger,
  type Outcome,
  type Registry,
  type Span,
  type Tracer,
} from '@aisle/runtime';
import type { MessagePosition } from '@aisle/store';
import type { FeatureService } from './feature.service';
import type { FeatureEvent } from './features';

export function eventFromProto(m: clickstreamV1.Event): FeatureEvent | undefined {
  if (!isEventType(m.type) || !m.eventId || !m.userId || !m.occurredAt) return undefined;
  return {
    tenant: m.tenant,
    eventId: m.eventId,
    type: m.type,
    userId: m.userId,
    sessionId: m.sessionId,
    itemId: m.itemId,
    query: m.query,
    quantity: m.quantity,
    price: m.price,
    occurredAt: m.occurredAt.getTime(),
  };
}

interface Deps {
  service: FeatureService;
  js: JetStreamClient;
  publisher: AsyncJetStreamPublisher;
  jsm: JetStreamManager;
  tracer: Tracer;
  logger: Logger;
  registry: Registry;
  batchSize: number;
  maxInFlight: number;
  ackWaitMs: number;
  /** Records where each user's notifications lie in FEATURES, so that forgetting the user erases them. */
  indexPositions?: (positions: MessagePosition[]) => Promise<void>;
  /** Which events belong to forgotten users and occurred before the request: dropped, not applied. */
  forgotten?: (events: readonly FeatureEvent[]) => Promise<ReadonlySet<number>>;
  /** Erases messages (a dropped event's) from their streams. */
  erase?: (positions: ReadonlyArray<{ stream: string; seq: number }>) => Promise<unknown>;
}

/**
 * Consumes normalized events: decode -> apply (one transaction per batch; throws = nak all) ->
 * publish `user_updated` for each changed user -> ack. Catalog messages on the same stream are acked
 * untouched: the feature service reads the catalog from the store.
 */
export async function startFeatureConsumer(deps: Deps): Promise<ConsumerLoop> {
  const applied = counter<'result'>(deps.registry, {
    name: 'aisle_feature_events_total',
    help: 'Events by result (applied, duplicate, invalid, forgotten: of a forgotten user, dropped)',
    labelNames: ['result'],
  });

  const handleBatch = async (msgs: readonly JsMsg[]): Promise<Outcome[]> => {
    const outcomes: Outcome[] = msgs.map(() => ACK);
    const events: FeatureEvent[] = [];
    const messageOf: JsMsg[] = [];
    const spans: Span[] = [];
    const traceOfUser = new Map<string, Context>();
    msgs.forEach((m, i) => {
      if (m.subject === Subjects.eventsItem) return;
      const decoded = decodeOrReason(() => clickstreamV1.Event.decode(m.data), 'normalized event');
      const e = typeof decoded === 'string' ? undefined : eventFromProto(decoded);
      if (!e) {
        applied.inc({ result: 'invalid' });
        outcomes[i] = {
          kind: 'term',
          reason: typeof decoded === 'string' ? decoded : 'payload: not a valid normalized event',
        };
        return;
      }
      events.push(e);
      messageOf.push(m);
      if (hasTraceContext(m.headers)) {
        const { span, context } = startChildSpan(deps.tracer, 'feature update', extractTraceContext(m.headers), {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'nats',
            'messaging.destination.name': m.subject,
            'aisle.event_type': e.type,
          },
        });
        spans.push(span);
        traceOfUser.set(`${e.tenant}\u001f${e.userId}`, context);
      }
    });
    try {
      // Events of forgotten users that occurred before the request (in flight or replayed) re-create nothing.
      const dropped = deps.forgotten && events.length > 0 ? await deps.forgotten(events) : new Set<number>();
      applied.inc({ result: 'forgotten' }, dropped.size);
      const kept = dropped.size > 0 ? events.filter((_, i) => !dropped.has(i)) : events;
      if (dropped.size > 0)
        await deps.erase?.([...dropped].map((i) => ({ stream: messageOf[i]!.info.stream, seq: messageOf[i]!.seq })));
      const result =
        kept.length > 0 ? await deps.service.applyBatch(kept) : { applied: 0, duplicates: 0, changedUsers: [] };
      applied.inc({ result: 'applied' }, result.applied);
      applied.inc({ result: 'duplicate' }, result.duplicates);
      const acks = await Promise.all(
        result.changedUsers.map((c) => {
          const payload = featureV1.UserFeaturesUpdated.encode({
            tenant: c.tenant,
            userId: c.userId,
            eventTime: new Date(c.eventTime),
            eventType: c.eventType,
          }).finish();
          const traceContext = traceOfUser.get(`${c.tenant}\u001f${c.userId}`);
          return deps.publisher.publish(Subjects.userFeaturesUpdated, payload, {
            msgId: `${c.tenant}:${c.userId}:${c.eventTime}`,
            headers: { [Headers.contentType]: ContentTypes.protobuf },
            ...(traceContext ? { traceContext } : { noTrace: true }),
          });
        }),
      );
      await deps.indexPositions?.(
        result.changedUsers.map((c, i) => ({
          tenant: c.tenant,
          userId: c.userId,
          stream: acks[i]?.stream ?? Streams.FEATURES.name,
          seq: acks[i]?.seq ?? 0,
        })),
      );
    } finally {
      for (const s of spans) s.end();
    }
    return outcomes;
  };

  return startConsumerLoop({
    js: deps.js,
    jsm: deps.jsm,
    stream: Streams.EVENTS.name,
    durable: 'feature',
    filterSubject: Subjects.eventsAll,
    batchSize: deps.batchSize,
    maxInFlight: deps.maxInFlight,
    ackWaitMs: deps.ackWaitMs,
    handleBatch,
    deadLetter: {
      publisher: deps.publisher,
      subject: Subjects.dlq('events'),
      by: 'feature',
      ...(deps.indexPositions && { index: { userOf: eventUserOf, record: deps.indexPositions } }),
    },
    logger: deps.logger,
    registry: deps.registry,
  });
}
