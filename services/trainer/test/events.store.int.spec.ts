/** Issue #18: the trainer never loads every event of a tenant; it reads a bounded, recent window. */
import { ForgottenUsers } from '@aisle/runtime';
import { openStore, type StoredEvent, STORE_PORTS } from '@aisle/store';
import { readTrainingEvents } from '../src/events.store';

const DAY = 86_400_000;
const event = (i: number, tenant = 'shop'): StoredEvent => ({
  tenant,
  eventId: `e${i}`,
  type: 'view',
  userId: `u${i % 7}`,
  sessionId: 's',
  itemId: `i${i % 11}`,
  query: '',
  quantity: 0,
  price: 0,
  currency: '',
  occurredAt: i * DAY,
  ingestedAt: i * DAY,
  requestId: '',
  position: 0,
  context: { surface: 'home' },
});

test('the window and the cap keep the most recent events, oldest first, with only the fields training reads', async () => {
  const store = await openStore('sqlite::memory:', STORE_PORTS);
  try {
    await store.events.insertMany([...Array.from({ length: 100 }, (_, i) => event(i + 1)), event(500, 'other')]);
    const byWindow = await readTrainingEvents(store, 'shop', { days: 30, maxEvents: 1000 });
    expect(byWindow.events.map((e) => e.occurredAt / DAY)).toEqual(Array.from({ length: 31 }, (_, i) => 70 + i));
    expect(byWindow.skipped).toBe(0);
    const byCap = await readTrainingEvents(store, 'shop', { days: 365, maxEvents: 7 });
    expect(byCap.events.map((e) => e.occurredAt / DAY)).toEqual([94, 95, 96, 97, 98, 99, 100]);
    expect(byCap.skipped).toBe(93);
    expect(Object.keys(byCap.events[0]!).sort()).toEqual(
      ['itemId', 'occurredAt', 'price', 'quantity', 'query', 'sessionId', 'type', 'userId'].sort(),
    );
    expect(await readTrainingEvents(store, 'nobody', { days: 30, maxEvents: 10 })).toEqual({
      events: [],
      skipped: 0,
      forgotten: 0,
    });
  } finally {
    await store.close();
  }
});

test("a forgotten user's events from before the request are left out of training; later ones are kept", async () => {
  const store = await openStore('sqlite::memory:', STORE_PORTS);
  try {
    await store.events.insertMany(Array.from({ length: 70 }, (_, i) => event(i + 1)));
    const forgotten = new ForgottenUsers('test-key', store.forgotten);
    // u3 was forgotten on day 40: events 3, 10, ..., 38 (6 of them up to day 40) go, 45, 52, ... stay.
    await forgotten.mark('shop', 'u3', 40 * DAY);
    await forgotten.mark('other', 'u4', 100 * DAY); // another tenant's marker changes nothing here
    const read = await readTrainingEvents(
      store,
      'shop',
      { days: 365, maxEvents: 1000 },
      await forgotten.forgottenIn('shop'),
    );
    expect(read.forgotten).toBe(6);
    expect(read.events.filter((e) => e.userId === 'u3').map((e) => e.occurredAt / DAY)).toEqual([45, 52, 59, 66]);
    expect(read.events.filter((e) => e.userId === 'u4')).toHaveLength(10);
    // The marker names the user by a keyed hash, never by the id.
    const keys = [...(await store.forgotten.list('shop')).keys()];
    expect(keys).toEqual([forgotten.keyOf('shop', 'u3')]);
    expect(keys[0]).not.toContain('u3');
  } finally {
    await store.close();
  }
});
