import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Mutex } from './mutex';
import { checkChurnScores, checkEvents, checkItems, chunks } from './validation';
import {
  sameEventContent,
  StoreError,
  StoreUnavailableError,
  type CatalogItem,
  type DocumentCollection,
  type DocumentRepository,
  type DocumentTx,
  type EventRepository,
  type ChurnScoreRecord,
  type ChurnScoreRepository,
  type EventScanOptions,
  type ForgottenRepository,
  type ItemRepository,
  type MessageIndexRepository,
  type MessagePosition,
  type Store,
  type StoredEvent,
} from './ports';

export interface SqliteOptions {
  path: string;
  /** How long a write waits for another connection's lock before failing (ms). */
  busyTimeoutMs: number;
}

/** `sqlite:<path>[?busy_timeout=ms]`; `sqlite::memory:` for an in-memory database. */
export function parseSqliteUrl(url: string): SqliteOptions {
  const rest = url.slice('sqlite:'.length);
  const [path = '', query = ''] = rest.split('?');
  if (!path) throw new StoreError(`AISLE_STORE_URL: no path in '${url}'`);
  const params = new URLSearchParams(query);
  const busy = Number(params.get('busy_timeout') ?? '5000');
  if (!Number.isFinite(busy) || busy < 0) throw new StoreError(`AISLE_STORE_URL: bad busy_timeout in '${url}'`);
  return { path, busyTimeoutMs: busy };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  tenant TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, user_id TEXT NOT NULL,
  session_id TEXT NOT NULL, item_id TEXT NOT NULL, query TEXT NOT NULL, quantity INTEGER NOT NULL,
  price REAL NOT NULL, currency TEXT NOT NULL, occurred_at INTEGER NOT NULL, ingested_at INTEGER NOT NULL,
  request_id TEXT NOT NULL, position INTEGER NOT NULL, context TEXT NOT NULL,
  PRIMARY KEY (tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (tenant, occurred_at, event_id);
CREATE INDEX IF NOT EXISTS events_by_user ON events (tenant, user_id, occurred_at);
CREATE TABLE IF NOT EXISTS items (
  tenant TEXT NOT NULL, item_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
  category TEXT NOT NULL, brand TEXT NOT NULL, price REAL NOT NULL, in_stock INTEGER NOT NULL,
  attributes TEXT NOT NULL, updated_at INTEGER NOT NULL, ingested_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
  collection TEXT NOT NULL, tenant TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (collection, tenant, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS churn_scores (
  tenant TEXT NOT NULL, user_id TEXT NOT NULL, risk REAL NOT NULL, band TEXT NOT NULL, factors TEXT NOT NULL,
  scored_at INTEGER NOT NULL, model_version TEXT NOT NULL, alerted INTEGER NOT NULL,
  PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS churn_by_risk ON churn_scores (tenant, risk DESC, user_id);
CREATE TABLE IF NOT EXISTS applied (
  consumer TEXT NOT NULL, tenant TEXT NOT NULL, event_id TEXT NOT NULL, applied_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (consumer, tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_occurrence ON events (occurred_at);
CREATE TABLE IF NOT EXISTS forgotten_users (
  tenant TEXT NOT NULL, user_key TEXT NOT NULL, forgotten_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, user_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS forgotten_by_time ON forgotten_users (forgotten_at);
CREATE TABLE IF NOT EXISTS message_index (
  tenant TEXT NOT NULL, user_id TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
  recorded_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, user_id, stream, seq)
) WITHOUT ROWID;
`;

/**
 * Databases from before retention have no `applied_at`: the column is added, and existing markers are
 * dated now (not 0, which the first pruning would take for "long ago" and forget).
 */
function migrate(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(applied)').all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === 'applied_at')) {
    db.exec('ALTER TABLE applied ADD COLUMN applied_at INTEGER NOT NULL DEFAULT 0');
    db.prepare('UPDATE applied SET applied_at = ?').run(Date.now());
  }
  db.exec('CREATE INDEX IF NOT EXISTS applied_by_time ON applied (consumer, applied_at)');
  // Likewise the message index before its retention: positions recorded before are dated now.
  const indexed = db.prepare('PRAGMA table_info(message_index)').all() as Array<{ name: string }>;
  if (!indexed.some((c) => c.name === 'recorded_at')) {
    db.exec('ALTER TABLE message_index ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0');
    db.prepare('UPDATE message_index SET recorded_at = ?').run(Date.now());
  }
  db.exec('CREATE INDEX IF NOT EXISTS message_index_by_time ON message_index (stream, recorded_at)');
}

/** Rows deleted per statement by retention: each chunk holds the write lock only briefly. */
const DELETE_CHUNK = 5000;

interface EventRow {
  tenant: string;
  event_id: string;
  type: string;
  user_id: string;
  session_id: string;
  item_id: string;
  query: string;
  quantity: number;
  price: number;
  currency: string;
  occurred_at: number;
  ingested_at: number;
  request_id: string;
  position: number;
  context: string;
}

interface ItemRow {
  tenant: string;
  item_id: string;
  title: string;
  description: string;
  category: string;
  brand: string;
  price: number;
  in_stock: number;
  attributes: string;
  updated_at: number;
  ingested_at: number;
}

function rowToEvent(r: EventRow): StoredEvent {
  return {
    tenant: r.tenant,
    eventId: r.event_id,
    type: r.type,
    userId: r.user_id,
    sessionId: r.session_id,
    itemId: r.item_id,
    query: r.query,
    quantity: r.quantity,
    price: r.price,
    currency: r.currency,
    occurredAt: r.occurred_at,
    ingestedAt: r.ingested_at,
    requestId: r.request_id,
    position: r.position,
    context: JSON.parse(r.context) as Record<string, string>,
  };
}

function rowToItem(r: ItemRow): CatalogItem {
  return {
    tenant: r.tenant,
    itemId: r.item_id,
    title: r.title,
    description: r.description,
    category: r.category,
    brand: r.brand,
    price: r.price,
    inStock: r.in_stock === 1,
    attributes: JSON.parse(r.attributes) as Record<string, string>,
    updatedAt: r.updated_at,
    ingestedAt: r.ingested_at,
  };
}

/** SQLITE_BUSY / SQLITE_LOCKED / I/O errors are transient: the caller should retry later. */
function translate(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY)/.test(code)) {
    return new StoreUnavailableError(`sqlite: ${code}`, { cause: err });
  }
  return err;
}

const isBusy = (err: unknown): boolean => {
  const code = (err as { code?: unknown }).code;
  return (
    code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || (typeof code === 'string' && code.startsWith('SQLITE_BUSY_'))
  );
};

/** Runs one synchronous SQLite step, retrying while another connection holds the lock. */
type Guard = <T>(fn: () => T) => Promise<T>;

/**
 * better-sqlite3 is synchronous, and SQLite's own busy handler sleeps in the calling thread: a lock
 * held by another process for seconds would freeze the event loop (health checks, gRPC, NATS all
 * time out). So the connection never waits (`timeout: 0`), and a busy step is retried after an async
 * pause, doubling from 1 ms to 50 ms, until `busyTimeoutMs`; then StoreUnavailableError (retry later).
 */
function busyRetry(busyTimeoutMs: number): Guard {
  return async <T>(fn: () => T): Promise<T> => {
    const until = Date.now() + busyTimeoutMs;
    for (let pause = 1; ; pause = Math.min(50, pause * 2)) {
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || Date.now() >= until) throw translate(err);
        await new Promise((r) => setTimeout(r, pause * (0.5 + Math.random())));
      }
    }
  };
}

/**
 * Keyset pagination: never holds a statement open across a yield, because better-sqlite3 refuses
 * writes on a connection while one of its statements is iterating.
 */
async function* pages<R>(guard: Guard, fetch: (after: string) => R[], keyOf: (row: R) => string): AsyncIterable<R> {
  let after = '';
  for (;;) {
    const rows = await guard(() => fetch(after));
    for (const r of rows) yield r;
    const last = rows[rows.length - 1];
    if (last === undefined) return;
    after = keyOf(last);
  }
}

/** The embedded store: one better-sqlite3 connection in WAL mode; writes are serialized by a mutex. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly events: EventRepository;
  readonly items: ItemRepository;
  readonly documents: DocumentRepository;
  readonly churnScores: ChurnScoreRepository;
  readonly messages: MessageIndexRepository;
  readonly forgotten: ForgottenRepository;
  private readonly db: Database.Database;
  private readonly writeLock = new Mutex();
  private readonly statements = new Map<string, Database.Statement>();
  private readonly guard: Guard;

  /** Prepared statements are compiled once: IN-lists vary by length, so the SQL text is the key. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      if (this.statements.size > 4000) this.statements.clear();
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Opens (creating the file and schema if needed) without blocking the event loop on another's lock. */
  static async open(opts: SqliteOptions): Promise<SqliteStore> {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    const db = new Database(opts.path, { timeout: 0 });
    try {
      // Two processes opening a new file at once: switching to WAL and creating the schema need the
      // lock the other holds.
      await busyRetry(opts.busyTimeoutMs)(() => {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // Deleted rows are overwritten, not left in free pages: erased shoppers do not linger in the file.
        db.pragma('secure_delete = ON');
        db.exec(SCHEMA);
        migrate(db);
      });
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteStore(db, opts);
  }

  private constructor(db: Database.Database, opts: SqliteOptions) {
    this.db = db;
    this.guard = busyRetry(opts.busyTimeoutMs);
    this.events = this.makeEvents();
    this.items = this.makeItems();
    this.documents = this.makeDocuments();
    this.churnScores = this.makeChurnScores();
    this.messages = this.makeMessages();
    this.forgotten = this.makeForgotten();
  }

  private makeForgotten(): ForgottenRepository {
    const rows = (r: Array<{ user_key: string; forgotten_at: number }>) =>
      new Map(r.map((x) => [x.user_key, x.forgotten_at]));
    return {
      mark: (tenant, userKey, at) =>
        this.writeLock.run(() =>
          this.guard(() => {
            this.stmt(
              `INSERT INTO forgotten_users VALUES (?, ?, ?)
                 ON CONFLICT (tenant, user_key) DO UPDATE SET forgotten_at = MAX(forgotten_at, excluded.forgotten_at)`,
            ).run(tenant, userKey, at);
          }),
        ),
      getMany: async (tenant, userKeys) => {
        const out = new Map<string, number>();
        for (const part of chunks([...new Set(userKeys)]))
          for (const [k, v] of await this.guard(() =>
            rows(
              this.stmt(
                `SELECT user_key, forgotten_at FROM forgotten_users WHERE tenant = ? AND user_key IN (${part.map(() => '?').join(',')})`,
              ).all(tenant, ...part) as Array<{ user_key: string; forgotten_at: number }>,
            ),
          ))
            out.set(k, v);
        return out;
      },
      list: async (tenant) =>
        this.guard(() =>
          rows(
            this.stmt('SELECT user_key, forgotten_at FROM forgotten_users WHERE tenant = ?').all(tenant) as Array<{
              user_key: string;
              forgotten_at: number;
            }>,
          ),
        ),
      pruneBefore: (before) =>
        this.deleteInChunks(
          this.db.prepare(
            `DELETE FROM forgotten_users WHERE (tenant, user_key) IN
               (SELECT tenant, user_key FROM forgotten_users WHERE forgotten_at < ? LIMIT ${DELETE_CHUNK})`,
          ),
          [before],
        ),
    };
  }

  private makeMessages(): MessageIndexRepository {
    const db = this.db;
    const insert = db.prepare(
      'INSERT OR IGNORE INTO message_index (tenant, user_id, stream, seq, recorded_at) VALUES (?, ?, ?, ?, ?)',
    );
    const insertAll = db.transaction((ps: readonly MessagePosition[]) => {
      const now = Date.now();
      for (const p of ps) insert.run(p.tenant, p.userId, p.stream, p.seq, now);
    });
    const prune = db.prepare(
      `DELETE FROM message_index WHERE (tenant, user_id, stream, seq) IN
         (SELECT tenant, user_id, stream, seq FROM message_index WHERE stream = ? AND recorded_at < ? LIMIT ?)`,
    );
    const lock = this.writeLock;
    return {
      record: async (ps) => {
        if (ps.length > 0) await lock.run(() => this.guard(() => insertAll.immediate(ps)));
      },
      take: (tenant, userId, streams) =>
        lock.run(() =>
          this.guard(() =>
            db
              .transaction(() => {
                const out: Array<{ stream: string; seq: number }> = [];
                for (const stream of streams) {
                  const rows = this.stmt(
                    'SELECT seq FROM message_index WHERE tenant = ? AND user_id = ? AND stream = ? ORDER BY seq',
                  ).all(tenant, userId, stream) as Array<{ seq: number }>;
                  for (const r of rows) out.push({ stream, seq: r.seq });
                  this.stmt('DELETE FROM message_index WHERE tenant = ? AND user_id = ? AND stream = ?').run(
                    tenant,
                    userId,
                    stream,
                  );
                }
                return out;
              })
              .immediate(),
          ),
        ),
      pruneBefore: async (stream, before, limit) => {
        let deleted = 0;
        while (deleted < limit) {
          const n = Math.min(DELETE_CHUNK, limit - deleted);
          const changes = await lock.run(() => this.guard(() => prune.run(stream, before, n).changes));
          deleted += changes;
          if (changes < n) return { deleted, more: false };
          await new Promise((r) => setImmediate(r));
        }
        return { deleted, more: true };
      },
    };
  }

  /** In-list deletes in chunks under the write lock; returns the rows deleted. */
  private async deleteIn(sqlPrefix: string, params: unknown[], ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const part of chunks([...new Set(ids)]))
      n += await this.writeLock.run(() =>
        this.guard(
          () => this.stmt(`${sqlPrefix} IN (${part.map(() => '?').join(',')})`).run(...params, ...part).changes,
        ),
      );
    return n;
  }

  async scrub(): Promise<void> {
    // Copies of erased rows can remain in the write-ahead log until it is checkpointed and truncated.
    await this.writeLock.run(() => this.guard(() => this.db.pragma('wal_checkpoint(TRUNCATE)')));
  }

  private makeChurnScores(): ChurnScoreRepository {
    const guard = this.guard;
    const db = this.db;
    interface Row {
      tenant: string;
      user_id: string;
      risk: number;
      band: string;
      factors: string;
      scored_at: number;
      model_version: string;
      alerted: number;
    }
    const toRecord = (r: Row): ChurnScoreRecord => ({
      tenant: r.tenant,
      userId: r.user_id,
      risk: r.risk,
      band: r.band as ChurnScoreRecord['band'],
      factors: JSON.parse(r.factors) as ChurnScoreRecord['factors'],
      scoredAt: r.scored_at,
      modelVersion: r.model_version,
      alerted: r.alerted === 1,
    });
    const upsert = db.prepare(
      `INSERT INTO churn_scores VALUES (@tenant, @userId, @risk, @band, @factors, @scoredAt, @modelVersion, @alerted)
       ON CONFLICT (tenant, user_id) DO UPDATE SET risk = excluded.risk, band = excluded.band, factors = excluded.factors,
         scored_at = excluded.scored_at, model_version = excluded.model_version, alerted = excluded.alerted`,
    );
    const upsertAll = db.transaction((rs: readonly ChurnScoreRecord[]) => {
      for (const r of rs) upsert.run({ ...r, factors: JSON.stringify(r.factors), alerted: r.alerted ? 1 : 0 });
    });
    const lock = this.writeLock;
    return {
      upsertMany: async (rs) => {
        checkChurnScores(rs);
        await lock.run(() => guard(() => upsertAll.immediate(rs)));
      },
      getMany: async (tenant, ids) => {
        const out = new Map<string, ChurnScoreRecord>();
        for (const part of chunks([...new Set(ids)])) {
          const rows = await guard(
            () =>
              this.stmt(
                `SELECT * FROM churn_scores WHERE tenant = ? AND user_id IN (${part.map(() => '?').join(',')})`,
              ).all(tenant, ...part) as Row[],
          );
          for (const r of rows) out.set(r.user_id, toRecord(r));
        }
        return out;
      },
      listAtRisk: async (tenant, minRisk, limit, after) => {
        // SQLite reads a negative LIMIT as "no limit"; the port says a limit below one returns nothing.
        if (limit <= 0) return [];
        const rows = await guard(() =>
          after
            ? (this.stmt(
                `SELECT * FROM churn_scores WHERE tenant = ? AND risk >= ? AND (risk < ? OR (risk = ? AND user_id > ?))
                   ORDER BY risk DESC, user_id LIMIT ?`,
              ).all(tenant, minRisk, after.risk, after.risk, after.userId, limit) as Row[])
            : (this.stmt(
                'SELECT * FROM churn_scores WHERE tenant = ? AND risk >= ? ORDER BY risk DESC, user_id LIMIT ?',
              ).all(tenant, minRisk, limit) as Row[]),
        );
        return rows.map(toRecord);
      },
      deleteMany: (tenant, ids) =>
        this.deleteIn('DELETE FROM churn_scores WHERE tenant = ? AND user_id', [tenant], ids),
    };
  }

  private makeEvents(): EventRepository {
    const guard = this.guard;
    const db = this.db;
    const insert = db.prepare(
      `INSERT OR IGNORE INTO events VALUES (@tenant, @eventId, @type, @userId, @sessionId, @itemId, @query,
       @quantity, @price, @currency, @occurredAt, @ingestedAt, @requestId, @position, @context)`,
    );
    const stored = db.prepare('SELECT * FROM events WHERE tenant = ? AND event_id = ?');
    const insertAll = db.transaction((events: readonly StoredEvent[]) => {
      let inserted = 0;
      const conflicting: number[] = [];
      events.forEach((e, i) => {
        if (insert.run({ ...e, context: JSON.stringify(e.context) }).changes === 1) inserted++;
        else {
          const row = stored.get(e.tenant, e.eventId) as EventRow | undefined;
          if (row && !sameEventContent(rowToEvent(row), e)) conflicting.push(i);
        }
      });
      return { inserted, conflicting };
    });
    const lock = this.writeLock;
    return {
      insertMany: async (events) => {
        checkEvents(events);
        return lock.run(() => guard(() => insertAll.immediate(events)));
      },
      count: async (filter) =>
        guard(() =>
          filter?.tenant === undefined
            ? (this.stmt('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n
            : (this.stmt('SELECT COUNT(*) AS n FROM events WHERE tenant = ?').get(filter.tenant) as { n: number }).n,
        ),
      stats: async (tenant) => {
        const row = await guard(
          () =>
            (tenant === undefined
              ? this.stmt('SELECT COUNT(*) AS n, MIN(occurred_at) AS lo, MAX(occurred_at) AS hi FROM events').get()
              : this.stmt(
                  'SELECT COUNT(*) AS n, MIN(occurred_at) AS lo, MAX(occurred_at) AS hi FROM events WHERE tenant = ?',
                ).get(tenant)) as {
              n: number;
              lo: number | null;
              hi: number | null;
            },
        );
        return { count: row.n, minOccurredAt: row.lo ?? undefined, maxOccurredAt: row.hi ?? undefined };
      },
      scan: (opts: EventScanOptions = {}) => this.scanEvents(opts),
      forgetUser: async (tenant, userId) => {
        const ids = (
          (await guard(() =>
            this.stmt('SELECT event_id FROM events WHERE tenant = ? AND user_id = ?').all(tenant, userId),
          )) as Array<{ event_id: string }>
        ).map((r) => r.event_id);
        const deleted = await this.writeLock.run(() =>
          guard(() => this.stmt('DELETE FROM events WHERE tenant = ? AND user_id = ?').run(tenant, userId).changes),
        );
        return { deleted, eventIds: ids };
      },
      deleteBefore: (before) =>
        this.deleteInChunks(
          db.prepare(
            `DELETE FROM events WHERE (tenant, event_id) IN
               (SELECT tenant, event_id FROM events WHERE occurred_at < ? LIMIT ${DELETE_CHUNK})`,
          ),
          [before],
        ),
    };
  }

  private async *scanEvents(opts: EventScanOptions): AsyncIterable<StoredEvent> {
    const page = opts.pageSize ?? 5000;
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: page };
    if (opts.tenant !== undefined) {
      where.push('tenant = @tenant');
      params['tenant'] = opts.tenant;
    }
    if (opts.fromMs !== undefined) {
      where.push('occurred_at >= @from');
      params['from'] = opts.fromMs;
    }
    if (opts.toMs !== undefined) {
      where.push('occurred_at < @to');
      params['to'] = opts.toMs;
    }
    const base = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const first = this.db.prepare(`SELECT * FROM events ${base} ORDER BY occurred_at, event_id, tenant LIMIT @limit`);
    const next = this.db.prepare(
      `SELECT * FROM events ${base ? base + ' AND' : 'WHERE'} (occurred_at, event_id, tenant) > (@at, @id, @t)
       ORDER BY occurred_at, event_id, tenant LIMIT @limit`,
    );
    let rows = await this.guard(() => first.all(params) as EventRow[]);
    while (rows.length > 0) {
      for (const r of rows) yield rowToEvent(r);
      const last = rows[rows.length - 1] as EventRow;
      if (rows.length < page) break;
      rows = await this.guard(
        () => next.all({ ...params, at: last.occurred_at, id: last.event_id, t: last.tenant }) as EventRow[],
      );
    }
  }

  private makeItems(): ItemRepository {
    const guard = this.guard;
    const db = this.db;
    const upsert = db.prepare(
      `INSERT INTO items VALUES (@tenant, @itemId, @title, @description, @category, @brand, @price, @inStock,
       @attributes, @updatedAt, @ingestedAt)
       ON CONFLICT (tenant, item_id) DO UPDATE SET title = excluded.title, description = excluded.description,
         category = excluded.category, brand = excluded.brand, price = excluded.price, in_stock = excluded.in_stock,
         attributes = excluded.attributes, updated_at = excluded.updated_at, ingested_at = excluded.ingested_at
       WHERE excluded.updated_at >= items.updated_at`,
    );
    const upsertAll = db.transaction((items: readonly CatalogItem[]) => {
      let written = 0;
      for (const i of items)
        written += upsert.run({ ...i, inStock: i.inStock ? 1 : 0, attributes: JSON.stringify(i.attributes) }).changes;
      return written;
    });
    const lock = this.writeLock;
    return {
      upsertMany: async (items) => {
        checkItems(items);
        return lock.run(async () => ({ written: await guard(() => upsertAll.immediate(items)) }));
      },
      getMany: async (tenant, ids) => {
        const out = new Map<string, CatalogItem>();
        for (const part of chunks([...new Set(ids)])) {
          const rows = await guard(
            () =>
              this.stmt(`SELECT * FROM items WHERE tenant = ? AND item_id IN (${part.map(() => '?').join(',')})`).all(
                tenant,
                ...part,
              ) as ItemRow[],
          );
          for (const r of rows) out.set(r.item_id, rowToItem(r));
        }
        return out;
      },
      count: async (filter) =>
        guard(() =>
          filter?.tenant === undefined
            ? (this.stmt('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n
            : (this.stmt('SELECT COUNT(*) AS n FROM items WHERE tenant = ?').get(filter.tenant) as { n: number }).n,
        ),
      scan: (tenant) => {
        const stmt = db.prepare('SELECT * FROM items WHERE tenant = ? AND item_id > ? ORDER BY item_id LIMIT 1000');
        return (async function* () {
          for await (const r of pages(
            guard,
            (after) => stmt.all(tenant, after) as ItemRow[],
            (r) => r.item_id,
          ))
            yield rowToItem(r);
        })();
      },
    };
  }

  private makeDocuments(): DocumentRepository {
    const guard = this.guard;
    const db = this.db;
    const getMany = <T>(collection: DocumentCollection, tenant: string, ids: readonly string[]): Map<string, T> => {
      const out = new Map<string, T>();
      for (const part of chunks([...new Set(ids)])) {
        const rows = this.stmt(
          `SELECT id, doc FROM documents WHERE collection = ? AND tenant = ? AND id IN (${part.map(() => '?').join(',')})`,
        ).all(collection, tenant, ...part) as Array<{ id: string; doc: string }>;
        for (const r of rows) out.set(r.id, JSON.parse(r.doc) as T);
      }
      return out;
    };
    const put = db.prepare(
      'INSERT INTO documents VALUES (?, ?, ?, ?) ON CONFLICT (collection, tenant, id) DO UPDATE SET doc = excluded.doc',
    );
    const mark = db.prepare('INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?)');
    const tx: DocumentTx = {
      getMany: async (c, t, ids) => getMany(c, t, ids),
      putMany: async (c, t, docs) => {
        for (const [id, doc] of docs) put.run(c, t, id, JSON.stringify(doc));
      },
      deleteMany: async (c, t, ids) => {
        for (const part of chunks([...new Set(ids)]))
          this.stmt(
            `DELETE FROM documents WHERE collection = ? AND tenant = ? AND id IN (${part.map(() => '?').join(',')})`,
          ).run(c, t, ...part);
      },
      markApplied: async (consumer, tenant, eventIds) => {
        const now = Date.now();
        return new Set(eventIds.filter((id) => mark.run(consumer, tenant, id, now).changes === 1));
      },
    };
    const lock = this.writeLock;
    return {
      transact: (fn) =>
        lock.run(async () => {
          await guard(() => db.exec('BEGIN IMMEDIATE'));
          try {
            const result = await fn(tx);
            await guard(() => db.exec('COMMIT'));
            return result;
          } catch (err) {
            if (db.inTransaction) db.exec('ROLLBACK');
            throw translate(err);
          }
        }),
      getMany: async (c, t, ids) => guard(() => getMany(c, t, ids)),
      scan: <T>(collection: DocumentCollection, tenant: string) => {
        const stmt = db.prepare(
          'SELECT id, doc FROM documents WHERE collection = ? AND tenant = ? AND id > ? ORDER BY id LIMIT 1000',
        );
        return (async function* () {
          const rows = pages(
            guard,
            (after) => stmt.all(collection, tenant, after) as Array<{ id: string; doc: string }>,
            (r) => r.id,
          );
          for await (const r of rows) yield { id: r.id, doc: JSON.parse(r.doc) as T };
        })();
      },
      deleteMany: (collection, tenant, ids) =>
        this.deleteIn('DELETE FROM documents WHERE collection = ? AND tenant = ? AND id', [collection, tenant], ids),
      forgetApplied: (consumer, tenant, eventIds) =>
        this.deleteIn(
          'DELETE FROM applied WHERE consumer = ? AND tenant = ? AND event_id',
          [consumer, tenant],
          eventIds,
        ),
      pruneApplied: (consumer, before) =>
        this.deleteInChunks(
          db.prepare(
            `DELETE FROM applied WHERE (consumer, tenant, event_id) IN
               (SELECT consumer, tenant, event_id FROM applied WHERE consumer = ? AND applied_at < ? LIMIT ${DELETE_CHUNK})`,
          ),
          [consumer, before],
        ),
      listIds: async (collection, tenant, after, limit) =>
        limit <= 0
          ? []
          : guard(() =>
              (
                this.stmt(
                  'SELECT id FROM documents WHERE collection = ? AND tenant = ? AND id > ? ORDER BY id LIMIT ?',
                ).all(collection, tenant, after, limit) as Array<{ id: string }>
              ).map((r) => r.id),
            ),
      count: async (collection, tenant) =>
        guard(() =>
          tenant === undefined
            ? (this.stmt('SELECT COUNT(*) AS n FROM documents WHERE collection = ?').get(collection) as { n: number }).n
            : (
                this.stmt('SELECT COUNT(*) AS n FROM documents WHERE collection = ? AND tenant = ?').get(
                  collection,
                  tenant,
                ) as { n: number }
              ).n,
        ),
    };
  }

  /** Runs a chunked DELETE until it deletes nothing, taking the write lock per chunk and yielding between. */
  private async deleteInChunks(stmt: Database.Statement, params: unknown[]): Promise<{ deleted: number }> {
    let deleted = 0;
    for (;;) {
      const n = await this.writeLock.run(() => this.guard(() => stmt.run(...params).changes));
      deleted += n;
      if (n < DELETE_CHUNK) return { deleted };
      await new Promise((r) => setImmediate(r));
    }
  }

  async ping(): Promise<void> {
    await this.guard(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    await this.writeLock.run(async () => {
      if (this.db.open) this.db.close();
    });
  }
}
