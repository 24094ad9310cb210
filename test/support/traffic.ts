import { ContentTypes, Subjects, clickstreamV1 } from '@aisle/contracts';
import { Rng, type GeneratedEvent } from '@aisle/datagen';
import { eventToProducerJson, eventToProducerProto } from '@aisle/testkit';

/** One message as a producer publishes it. */
export interface ProducerMessage {
  subject: string;
  data: Uint8Array;
  contentType: string;
  msgId?: string;
  /** For invalid messages: the reject reason ingest must give (prefix for JSON parse errors). */
  expectedReason?: string;
  /** For valid messages: the event. */
  event?: GeneratedEvent;
  kind: 'valid' | 'invalid' | 'duplicate';
}

const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const json = ContentTypes.json;

/** Invalid inputs covering every rule, each with the reason ingest must put in the DLQ header. */
function invalidVariant(e: GeneratedEvent, k: number, now: number): Omit<ProducerMessage, 'kind'> {
  const base = eventToProducerJson(e);
  const subject = Subjects.clickstream(e.type);
  const id = `bad-${k}`;
  const variants: Array<() => Omit<ProducerMessage, 'kind'>> = [
    () => ({
      subject,
      data: new TextEncoder().encode(`{"event_id":"${id}",`),
      contentType: json,
      expectedReason: 'payload: invalid JSON',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, user_id: undefined }),
      contentType: json,
      expectedReason: 'user_id: required',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: undefined }),
      contentType: json,
      expectedReason: 'event_id: required',
    }),
    () => ({
      subject: Subjects.clickstream('teleport'),
      data: enc({ ...base, event_id: id, type: 'teleport' }),
      contentType: json,
      expectedReason:
        "type: unknown event type 'teleport' (expected one of view, click, add_to_cart, remove_from_cart, purchase, search)",
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, occurred_at: new Date(now + 3 * 86_400_000).toISOString() }),
      contentType: json,
      expectedReason: 'occurred_at: more than 24h in the future',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, user_id: 'u'.repeat(200) }),
      contentType: json,
      expectedReason: 'user_id: longer than 128 bytes',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, user_id: 'u\u202e1' }),
      contentType: json,
      expectedReason: 'user_id: contains an unprintable character U+202E (control, zero-width or bidi)',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, price: 'NaN' }),
      contentType: json,
      expectedReason: 'price: must be a finite number',
    }),
    () => ({
      subject,
      data: new TextEncoder().encode(JSON.stringify({ ...base, event_id: id }).replace(/}$/, ',"quantity":1e400}')),
      contentType: json,
      expectedReason: 'quantity: must be a finite number',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, occurred_at: 'yesterday' }),
      contentType: json,
      expectedReason: 'occurred_at: must be an RFC 3339 timestamp like 2026-11-27T10:00:00Z',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, colour: 'red' }),
      contentType: json,
      expectedReason: 'colour: unknown field',
    }),
    () => ({
      subject,
      data: enc({ ...base, event_id: id, quantity: -2 }),
      contentType: json,
      expectedReason: 'quantity: must be >= 0',
    }),
    () => ({
      subject: Subjects.clickstream('search'),
      data: enc({ ...base, event_id: id, type: 'search', item_id: undefined, query: '  ' }),
      contentType: json,
      expectedReason: 'query: required for search',
    }),
    () => ({
      subject: Subjects.clickstream('purchase'),
      data: enc({ ...base, event_id: id, type: 'purchase', item_id: 'i1', price: undefined }),
      contentType: json,
      expectedReason: 'price: required for purchase',
    }),
    () => ({
      subject: Subjects.clickstream('view'),
      data: enc({ ...base, event_id: id, type: 'click', item_id: 'i1' }),
      contentType: json,
      expectedReason: "type: 'click' does not match the subject's type 'view'",
    }),
    () => ({
      subject,
      data: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
      contentType: ContentTypes.protobuf,
      expectedReason: 'payload: invalid protobuf',
    }),
    () => ({
      subject: Subjects.clickstream('purchase'),
      data: clickstreamV1.Event.encode(
        clickstreamV1.Event.fromPartial({
          eventId: id,
          type: 'purchase',
          userId: e.userId,
          itemId: 'i1',
          price: Number.NaN,
          occurredAt: new Date(e.occurredAt),
        }),
      ).finish(),
      contentType: ContentTypes.protobuf,
      expectedReason: 'price: must be a finite number',
    }),
    () => ({
      subject,
      data: clickstreamV1.Event.encode(
        clickstreamV1.Event.fromPartial({
          eventId: id,
          type: e.type,
          itemId: 'i1',
          occurredAt: new Date(e.occurredAt),
        }),
      ).finish(),
      contentType: ContentTypes.protobuf,
      expectedReason: 'user_id: required',
    }),
    () => ({ subject, data: enc([base]), contentType: json, expectedReason: 'payload: must be a JSON object' }),
    () => ({
      subject,
      data: enc(base),
      contentType: 'text/csv',
      expectedReason: "Content-Type: unsupported 'text/csv' (use application/json or application/x-protobuf)",
    }),
  ];
  return (variants[k % variants.length] as () => Omit<ProducerMessage, 'kind'>)();
}

/**
 * A producer's traffic: every valid event once, in time order (half JSON, half protobuf; half with a
 * Nats-Msg-Id), with invalid messages and duplicates inserted at random places. A duplicate follows its
 * original and is either the same message with the same msg id (JetStream drops it) or the event
 * re-encoded the other way without one (ingest's store must drop it).
 */
export function producerTraffic(
  events: readonly GeneratedEvent[],
  opts: { invalidShare: number; duplicateShare: number; seed: number; now: number },
): ProducerMessage[] {
  const rng = new Rng(opts.seed);
  const out: ProducerMessage[] = events.map((e) => {
    const asProto = rng.chance(0.5);
    return {
      subject: Subjects.clickstream(e.type),
      data: asProto ? eventToProducerProto(e) : enc(eventToProducerJson(e)),
      contentType: asProto ? ContentTypes.protobuf : ContentTypes.json,
      event: e,
      kind: 'valid',
      ...(rng.chance(0.5) ? { msgId: `default:${e.eventId}` } : {}),
    };
  });
  const total = Math.round(events.length / (1 - opts.invalidShare - opts.duplicateShare));
  const nInvalid = Math.round(total * opts.invalidShare);
  const nDup = total - events.length - nInvalid;
  for (let k = 0; k < nDup; k++) {
    const orig = out[rng.int(out.length)] as ProducerMessage;
    const e = orig.event as GeneratedEvent;
    let dup: ProducerMessage;
    if (orig.msgId && rng.chance(0.5)) dup = { ...orig, kind: 'duplicate' };
    else {
      const asProto = orig.contentType === ContentTypes.json;
      dup = {
        subject: orig.subject,
        data: asProto ? eventToProducerProto(e) : enc(eventToProducerJson(e)),
        contentType: asProto ? ContentTypes.protobuf : ContentTypes.json,
        event: e,
        kind: 'duplicate',
      };
    }
    const after = out.indexOf(orig) + 1;
    out.splice(after + rng.int(out.length - after + 1), 0, dup);
  }
  for (let k = 0; k < nInvalid; k++) {
    const e = events[rng.int(events.length)] as GeneratedEvent;
    out.splice(rng.int(out.length + 1), 0, { ...invalidVariant(e, k, opts.now), kind: 'invalid' });
  }
  return out;
}
