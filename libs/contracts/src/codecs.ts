import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Item as ItemProto } from './gen/aisle/catalog/v1/item';
import { Served } from './gen/aisle/ranking/v1/ranking_service';
import type { Item } from './records';

/**
 * The accepted catalog's wire form (stream ITEMS, `Subjects.item`): the `Item` record as its protobuf
 * message, timestamps as proto timestamps. Ingest encodes, the services that materialize the catalog decode.
 */
export function encodeItem(item: Item): Uint8Array {
  return ItemProto.encode(
    ItemProto.fromPartial({ ...item, updatedAt: new Date(item.updatedAt), ingestedAt: new Date(item.ingestedAt) }),
  ).finish();
}

/** Decodes an ITEMS payload; throws on bytes that are not an `Item` message. */
export function decodeItem(bytes: Uint8Array): Item {
  const p = ItemProto.decode(bytes);
  return {
    tenant: p.tenant,
    itemId: p.itemId,
    title: p.title,
    description: p.description,
    category: p.category,
    brand: p.brand,
    price: p.price,
    inStock: p.inStock ?? true,
    attributes: p.attributes,
    updatedAt: p.updatedAt?.getTime() ?? 0,
    ingestedAt: p.ingestedAt?.getTime() ?? 0,
  };
}

/** `Served.experiment`'s field number. */
const SERVED_EXPERIMENT_FIELD = 11;

/**
 * A served event's payload decoded only when it carries an experiment (field 11); undefined when it does
 * not. Most responses are in no experiment: their items (the bulk of the bytes) are skipped over instead of
 * decoded into objects, which made the experiment service's per-impression cost grow with the list length.
 * Throws on bytes that are not a protobuf message, as a full decode would.
 */
export function decodeServedHead(bytes: Uint8Array): Served | undefined {
  const reader = new BinaryReader(bytes);
  let found = false;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const wireType = tag & 7;
    if (tag >>> 3 === SERVED_EXPERIMENT_FIELD && wireType === 2) found = true;
    reader.skip(wireType, tag >>> 3);
  }
  return found ? Served.decode(bytes) : undefined;
}
