import { Item as ItemProto } from './gen/aisle/catalog/v1/item';
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
