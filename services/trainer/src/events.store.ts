import type { StoreOf } from '@aisle/store';
import type { ShopEvent } from './pipeline';

export interface TrainingWindow {
  /** Days of history before the tenant's latest event. */
  readonly days: number;
  /** Most events kept: the most recent ones. */
  readonly maxEvents: number;
}

/**
 * A tenant's events for training, bounded whatever the store holds: those of the last `days` before the
 * latest event, at most the `maxEvents` most recent of them, each reduced to the fields training reads.
 * Streamed from the store in time order through a ring buffer, so memory never holds more than
 * `maxEvents` of them. Events of forgotten users from before their request are left out.
 */
export async function readTrainingEvents(
  store: StoreOf<'events'>,
  tenant: string,
  window: TrainingWindow,
  /** Events to exclude: a forgotten user's that occurred before the request (stored in a race with it). */
  forgotten: (userId: string, occurredAt: number) => boolean = () => false,
): Promise<{ events: ShopEvent[]; skipped: number; forgotten: number }> {
  const { maxOccurredAt } = await store.events.stats(tenant);
  if (maxOccurredAt === undefined) return { events: [], skipped: 0, forgotten: 0 };
  const fromMs = maxOccurredAt - window.days * 86_400_000;
  const ring: ShopEvent[] = [];
  let next = 0;
  let seen = 0;
  let excluded = 0;
  for await (const e of store.events.scan({ tenant, fromMs })) {
    if (forgotten(e.userId, e.occurredAt)) {
      excluded++;
      continue;
    }
    const compact: ShopEvent = {
      type: e.type,
      userId: e.userId,
      sessionId: e.sessionId,
      itemId: e.itemId,
      query: e.query,
      quantity: e.quantity,
      price: e.price,
      occurredAt: e.occurredAt,
    };
    if (ring.length < window.maxEvents) ring.push(compact);
    else {
      ring[next] = compact;
      next = (next + 1) % window.maxEvents;
    }
    seen++;
  }
  // Oldest first again: the ring's head is where the next overwrite would have gone.
  const events = next === 0 ? ring : [...ring.slice(next), ...ring.slice(0, next)];
  return { events, skipped: seen - events.length, forgotten: excluded };
}
