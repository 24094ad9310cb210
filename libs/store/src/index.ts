import { MongoStore } from './mongodb.store';
import { StoreError, type Store } from './ports';
import { parseSqliteUrl, SqliteStore } from './sqlite.store';

export * from './ports';
export { SqliteStore, parseSqliteUrl } from './sqlite.store';
export { MongoStore } from './mongodb.store';

/** Opens the store named by `AISLE_STORE_URL`: `sqlite:<path>` or `mongodb://...` / `mongodb+srv://...`. */
export async function openStore(url: string): Promise<Store> {
  if (url.startsWith('sqlite:')) return SqliteStore.open(parseSqliteUrl(url));
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) return MongoStore.open(url);
  throw new StoreError(
    `AISLE_STORE_URL: unsupported scheme in '${url.replace(/\/\/[^@]*@/, '//***@')}' (use sqlite:<path> or mongodb://...)`,
  );
}
