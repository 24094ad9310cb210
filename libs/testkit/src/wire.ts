import {
  catalogV1,
  clickstreamV1,
  ContentTypes,
  DEFAULT_TENANT,
  encodeItem,
  Headers,
  Streams,
  Subjects,
  type Item,
} from '@aisle/contracts';
import { ensureStreams, jetStreamOf } from '@aisle/runtime';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { GeneratedEvent, GeneratedItem } from '@aisle/datagen';

/** The JSON a producer publishes for a generated event (snake_case, RFC 3339 time). */
export function eventToProducerJson(e: GeneratedEvent, tenant = DEFAULT_TENANT): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event_id: e.eventId,
    tenant,
    type: e.type,
    user_id: e.userId,
    session_id: e.sessionId,
    occurred_at: new Date(e.occurredAt).toISOString(),
  };
  if (e.itemId) out['item_id'] = e.itemId;
  if (e.query) out['query'] = e.query;
  if (e.quantity) out['quantity'] = e.quantity;
  if (e.type === 'purchase' || e.price) out['price'] = e.price;
  return out;
}

/** The binary protobuf a producer publishes for a generated event. */
export function eventToProducerProto(e: GeneratedEvent, tenant = DEFAULT_TENANT): Uint8Array {
  return clickstreamV1.Event.encode(
    clickstreamV1.Event.fromPartial({
      eventId: e.eventId,
      tenant,
      type: e.type,
      userId: e.userId,
      sessionId: e.sessionId,
      itemId: e.itemId,
      query: e.query,
      quantity: e.quantity,
      price: e.price,
      occurredAt: new Date(e.occurredAt),
    }),
  ).finish();
}

export function itemToProducerJson(i: GeneratedItem, tenant = DEFAULT_TENANT): Record<string, unknown> {
  return {
    item_id: i.itemId,
    tenant,
    title: i.title,
    description: i.description,
    category: i.category,
    brand: i.brand,
    price: i.price,
    in_stock: i.inStock,
    updated_at: new Date(i.updatedAt).toISOString(),
  };
}

export function itemToProto(i: GeneratedItem, tenant = DEFAULT_TENANT): catalogV1.Item {
  return catalogV1.Item.fromPartial({
    itemId: i.itemId,
    tenant,
    title: i.title,
    description: i.description,
    category: i.category,
    brand: i.brand,
    price: i.price,
    inStock: i.inStock,
    updatedAt: new Date(i.updatedAt),
  });
}

/**
 * Publishes a generated catalog and clickstream as a producer would: JSON on the tenant's subjects
 * (`aisle.clickstream.v1.<type>.<tenant>`, `aisle.catalog.v1.upsert.<tenant>`), with Nats-Msg-Id per event.
 */
export async function publishShop(
  js: { publish(subject: string, data: Uint8Array, opts: { headers: MsgHdrs; msgID?: string }): Promise<unknown> },
  items: readonly GeneratedItem[],
  events: readonly GeneratedEvent[],
  opts: { window?: number; tenant?: string } = {},
): Promise<void> {
  // nats.js writes Nats-Msg-Id into the headers object it is given: one object per message.
  const json = () => {
    const h = headers();
    h.set(Headers.contentType, ContentTypes.json);
    return h;
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const tenant = opts.tenant ?? DEFAULT_TENANT;
  await Promise.all(
    items.map((i) =>
      js.publish(Subjects.catalog(tenant), enc(itemToProducerJson(i, opts.tenant)), { headers: json() }),
    ),
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: opts.window ?? 300 }, async () => {
      while (next < events.length) {
        const e = events[next++] as GeneratedEvent;
        await js.publish(Subjects.clickstream(e.type, tenant), enc(eventToProducerJson(e, opts.tenant)), {
          headers: json(),
          msgID: `${tenant}:${e.eventId}`,
        });
      }
    }),
  );
}

/** A generated item as ingest accepts and stores it (the contracts' `Item`). */
export function acceptedItem(i: GeneratedItem, tenant = DEFAULT_TENANT): Item {
  return { ...i, tenant, attributes: {}, ingestedAt: i.updatedAt };
}

/**
 * Stands in for ingest in tests of one service: provisions stream ITEMS and publishes `items` there as the
 * accepted catalog (what ingest publishes after storing them), waiting for every acknowledgement.
 */
export async function publishAcceptedCatalog(nc: NatsConnection, items: readonly Item[]): Promise<void> {
  const { js, jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [Streams.ITEMS]);
  await Promise.all(items.map((i) => js.publish(Subjects.item(i.tenant, i.itemId), encodeItem(i))));
}
