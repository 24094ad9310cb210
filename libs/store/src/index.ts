import { MongoStore } from './mongodb.store';
import { StoreError, type Store } from './ports';
import { parseSqliteUrl, SqliteStore } from './sqlite.store';

export * from './ports';
export { SqliteStore, parseSqliteUrl } from './sqlite.store';
export { MongoStore } from './mongodb.store';

/** The ports a service may declare: the aggregates (events, catalog items, documents, churn scores, message index, forget markers). */
export const STORE_PORTS = ['events', 'items', 'documents', 'churnScores', 'messages', 'forgotten'] as const;
export type StorePort = (typeof STORE_PORTS)[number];
/** Every aggregate of `Store` is a port (a repository added to `Store` must be added above, or this fails to compile). */
type Unlisted = Exclude<keyof Store, StorePort | 'kind' | 'scrub' | 'ping' | 'close'>;
export const STORE_PORTS_COMPLETE: [Unlisted] extends [never] ? true : Unlisted = true;

/** A store as one service holds it: the ports it declared, and what every store does (ping, scrub, close). */
export type StoreOf<P extends StorePort> = Pick<Store, P | 'kind' | 'scrub' | 'ping' | 'close'>;

/**
 * Opens the store named by `AISLE_STORE_URL` (`sqlite:<path>` or `mongodb://...` / `mongodb+srv://...`)
 * and hands back only the `ports` the service declares: each aggregate has one owner (ARCHITECTURE.md,
 * Storage), and a service never holds a port to another's, e.g. only ingest declares `items`; the
 * others materialize the catalog from stream ITEMS. Tests and tools that inspect everything pass
 * `STORE_PORTS`.
 */
export async function openStore<P extends StorePort>(url: string, ports: readonly P[]): Promise<StoreOf<P>> {
  const store = await openAdapter(url);
  const view: Record<string, unknown> = {
    kind: store.kind,
    scrub: () => store.scrub(),
    ping: () => store.ping(),
    close: () => store.close(),
  };
  for (const port of ports) {
    if (!STORE_PORTS.includes(port)) {
      await store.close();
      throw new StoreError(`openStore: unknown port '${String(port)}' (ports: ${STORE_PORTS.join(', ')})`);
    }
    view[port] = store[port];
  }
  return Object.freeze(view) as StoreOf<P>;
}

async function openAdapter(url: string): Promise<Store> {
  if (url.startsWith('sqlite:')) return SqliteStore.open(parseSqliteUrl(url));
  if (url.startsWith('mongodb://') || url.startsWith('mongodb+srv://')) return MongoStore.open(url);
  throw new StoreError(
    `AISLE_STORE_URL: unsupported scheme in '${url.replace(/\/\/[^@]*@/, '//***@')}' (use sqlite:<path> or mongodb://...)`,
  );
}
