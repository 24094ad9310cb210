import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { openStore, STORE_PORTS, StoreUnavailableError } from '../src';
import { catalogItem, storedEvent } from './fixtures';
import { describeStoreContract } from './store.contract';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempUrl = (query = ''): { url: string; path: string } => {
  const dir = mkdtempSync(join(tmpdir(), 'aisle-store-'));
  dirs.push(dir);
  const path = join(dir, 'nested', 'aisle.db');
  return { url: `sqlite:${path}${query}`, path };
};

describeStoreContract('sqlite', () => openStore(tempUrl().url, STORE_PORTS));

const event = (eventId: string) => storedEvent(eventId, { tenant: 't', userId: 'u', itemId: 'i' });

describe('sqlite specifics', () => {
  test('a locked database surfaces as StoreUnavailableError and works again once released', async () => {
    const { url, path } = tempUrl('?busy_timeout=50');
    const store = await openStore(url, STORE_PORTS);
    const locker = new Database(path);
    locker.exec('BEGIN EXCLUSIVE');
    const e = storedEvent('e', { tenant: 't', userId: 'u', itemId: 'i' });
    await expect(store.events.insertMany([e])).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.documents.transact(async (tx) => tx.markApplied('c', 't', ['e']))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    locker.exec('ROLLBACK');
    locker.close();
    await expect(store.events.insertMany([e])).resolves.toEqual({ inserted: 1, conflicting: [] });
    await store.close();
  });

  test('while another process holds the lock, store calls wait without blocking the event loop', async () => {
    const { url, path } = tempUrl('?busy_timeout=1000');
    const store = await openStore(url, STORE_PORTS);
    await store.events.insertMany([event('before')]);
    const locker = new Database(path);
    locker.exec('BEGIN EXCLUSIVE');
    let lastTick = Date.now();
    let longestGap = 0;
    const ticker = setInterval(() => {
      longestGap = Math.max(longestGap, Date.now() - lastTick);
      lastTick = Date.now();
    }, 5);
    try {
      const started = Date.now();
      const writes = [
        store.events.insertMany([event('during')]),
        store.documents.transact(async (tx) => tx.markApplied('c', 't', ['e'])),
        store.churnScores.upsertMany([]),
        store.items.upsertMany([]),
      ];
      // Readers are not blocked in WAL mode.
      expect(await store.events.count()).toBe(1);
      const outcomes = await Promise.allSettled(writes);
      // Each write gave up after busy_timeout with a retryable error, and the loop kept ticking meanwhile:
      // pauses are at most 50 ms (the bound asserted here leaves room for a busy machine).
      expect(outcomes.map((o) => o.status === 'rejected' && o.reason instanceof StoreUnavailableError)).toEqual([
        true,
        true,
        true,
        true,
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(longestGap).toBeLessThan(250);
      // Released in the middle of a wait: the waiting call succeeds.
      const waiting = store.events.insertMany([event('after')]);
      setTimeout(() => {
        locker.exec('COMMIT');
        locker.close();
      }, 300);
      await expect(waiting).resolves.toEqual({ inserted: 1, conflicting: [] });
      expect(longestGap).toBeLessThan(250);
      expect(await store.events.count()).toBe(2);
    } finally {
      clearInterval(ticker);
      if (locker.open) locker.close();
      await store.close();
    }
  });

  test('a database from before retention keeps its markers: they are dated at the upgrade, not at 0', async () => {
    const { url, path } = tempUrl();
    mkdirSync(dirname(path), { recursive: true });
    const old = new Database(path);
    old.exec(`CREATE TABLE applied (consumer TEXT NOT NULL, tenant TEXT NOT NULL, event_id TEXT NOT NULL,
      PRIMARY KEY (consumer, tenant, event_id)) WITHOUT ROWID;
      INSERT INTO applied VALUES ('feature', 't', 'e1');`);
    old.close();
    const before = Date.now();
    const store = await openStore(url, STORE_PORTS);
    expect(await store.documents.pruneApplied('feature', before - 1)).toEqual({ deleted: 0 });
    expect(await store.documents.transact((tx) => tx.markApplied('feature', 't', ['e1', 'e2']))).toEqual(
      new Set(['e2']),
    );
    expect(await store.documents.pruneApplied('feature', Date.now() + 1)).toEqual({ deleted: 2 });
    await store.close();
  });

  test('a message index from before its retention is dated at the upgrade: nothing is pruned as old', async () => {
    const { url, path } = tempUrl();
    mkdirSync(dirname(path), { recursive: true });
    const old = new Database(path);
    old.exec(`CREATE TABLE message_index (tenant TEXT NOT NULL, user_id TEXT NOT NULL, stream TEXT NOT NULL,
      seq INTEGER NOT NULL, PRIMARY KEY (tenant, user_id, stream, seq)) WITHOUT ROWID;
      INSERT INTO message_index VALUES ('t', 'u', 'EVENTS', 1);`);
    old.close();
    const before = Date.now();
    const store = await openStore(url, ['messages']);
    expect(await store.messages.pruneBefore('EVENTS', before - 1, 10)).toEqual({ deleted: 0, more: false });
    expect(await store.messages.pruneBefore('EVENTS', Date.now() + 1, 10)).toEqual({ deleted: 1, more: false });
    await store.close();
  });

  test('retention deletes in chunks, more than one chunk in all', async () => {
    const store = await openStore(tempUrl().url, STORE_PORTS);
    const events = Array.from({ length: 12_000 }, (_, i) =>
      storedEvent(`e${i}`, { tenant: 't', userId: 'u', itemId: 'i', occurredAt: i }),
    );
    await store.events.insertMany(events);
    expect(await store.events.deleteBefore(11_000)).toEqual({ deleted: 11_000 });
    expect(await store.events.count()).toBe(1_000);
    await store.close();
  });

  test("a service holds only the ports it declares (issue #13: the catalog is ingest's)", async () => {
    const { url } = tempUrl();
    const ingest = await openStore(url, ['events', 'items', 'messages']);
    const ranking = await openStore(url, ['messages']);
    try {
      await ingest.items.upsertMany([catalogItem('sku', 1)]);
      expect(Object.keys(ranking).sort()).toEqual(['close', 'kind', 'messages', 'ping', 'scrub']);
      for (const port of ['items', 'events', 'documents', 'churnScores'])
        expect((ranking as unknown as Record<string, unknown>)[port]).toBeUndefined();
      // @ts-expect-error: not declared, so not there to compile against either
      expect(ranking.items).toBeUndefined();
      await expect(ranking.messages.take('t', 'u', ['RANKING'])).resolves.toEqual([]);
      expect(await ingest.items.count()).toBe(1);
      await expect(openStore(url, ['tables' as 'items'])).rejects.toThrow(/unknown port 'tables'/);
    } finally {
      await ranking.close();
      await ingest.close();
    }
  });

  test('rejects unknown URL schemes with a clear message', async () => {
    await expect(openStore('postgres://x', STORE_PORTS)).rejects.toThrow(/AISLE_STORE_URL: unsupported scheme/);
  });
});
