import type { CatalogItem, StoredEvent } from '../src';

/** A stored event with empty defaults; tests name only the fields they care about. */
export const storedEvent = (eventId: string, over: Partial<StoredEvent> = {}): StoredEvent => ({
  tenant: 't1',
  eventId,
  type: 'view',
  userId: 'u1',
  sessionId: '',
  itemId: 'i1',
  query: '',
  quantity: 0,
  price: 0,
  currency: '',
  occurredAt: 1,
  ingestedAt: 1,
  requestId: '',
  position: 0,
  context: {},
  ...over,
});

/** A catalog item with plain defaults at version `updatedAt`. */
export const catalogItem = (itemId: string, updatedAt: number, over: Partial<CatalogItem> = {}): CatalogItem => ({
  tenant: 't1',
  itemId,
  title: `Item ${itemId}`,
  description: '',
  category: 'A > B',
  brand: 'acme',
  price: 9.5,
  inStock: true,
  attributes: {},
  updatedAt,
  ingestedAt: updatedAt,
  ...over,
});
