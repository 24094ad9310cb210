import type { EventType } from './subjects';

/**
 * The normalized records every service shares (the proto messages carry them on the wire; these are
 * their in-process form, timestamps in epoch milliseconds). Each service keeps the fields it needs
 * with `Pick<Event, ...>`, instead of writing its own copy.
 */

/** A validated clickstream event: what ingest stores and republishes on `aisle.events.v1.<type>`. */
export interface Event {
  tenant: string;
  /** Producer-chosen; the idempotency key within a tenant. */
  eventId: string;
  type: EventType;
  userId: string;
  sessionId: string;
  /** Empty for searches. */
  itemId: string;
  /** Only for searches. */
  query: string;
  quantity: number;
  price: number;
  currency: string;
  occurredAt: number;
  ingestedAt: number;
  /** The `request_id` of the ranking response the event follows, if any. */
  requestId: string;
  /** 1-based position in that response, 0 if none. */
  position: number;
  context: Record<string, string>;
}

/** A catalog item as ingest normalizes it (`aisle.events.v1.item`). */
export interface Item {
  tenant: string;
  itemId: string;
  title: string;
  description: string;
  /** Category path, "Department > Subcategory". */
  category: string;
  brand: string;
  price: number;
  inStock: boolean;
  attributes: Record<string, string>;
  /** Producer version; an older update never replaces a newer one. */
  updatedAt: number;
  ingestedAt: number;
}
