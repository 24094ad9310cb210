import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, StoreUnavailableError } from '../src';
import { storedEvent } from './fixtures';
import { describeStoreContract } from './store.contract';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempUrl = (query = ''): { url: string; path: string } => {
  const dir = mkdtempSync(join(tmpdir(), 'aisle-store-'));
  dirs.push(dir);
  const path = join(dir, 'nested', 'aisle.db');
  return { url: `sqlite:${path}${query}`, path };
};

describeStoreContract('sqlite', () => openStore(tempUrl().url));

describe('sqlite specifics', () => {
  test('a locked database surfaces as StoreUnavailableError and works again once released', async () => {
    const { url, path } = tempUrl('?busy_timeout=50');
    const store = await openStore(url);
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

  test('rejects unknown URL schemes with a clear message', async () => {
    await expect(openStore('postgres://x')).rejects.toThrow(/AISLE_STORE_URL: unsupported scheme/);
  });
});
