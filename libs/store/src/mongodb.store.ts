import {
  MongoBulkWriteError,
  MongoClient,
  MongoClientClosedError,
  MongoError,
  MongoErrorLabel,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  WriteConcern,
  type AnyBulkWriteOperation,
  type ClientSession,
  type Collection,
  type Document,
  type Filter,
  type IndexDescription,
  type MongoClientOptions,
  type TransactionOptions,
  type WriteConcernError,
  type WriteError,
} from 'mongodb';
import { Mutex } from './mutex';
import {
  sameEventContent,
  StoreError,
  StoreUnavailableError,
  type CatalogItem,
  type ChurnScoreRecord,
  type ChurnScoreRepository,
  type DocumentCollection,
  type DocumentRepository,
  type DocumentTx,
  type EventRepository,
  type EventScanOptions,
  type ForgottenRepository,
  type ItemRepository,
  type MessageIndexRepository,
  type Store,
  type StoredEvent,
} from './ports';
import { checkChurnScores, checkEvents, checkItems, chunks } from './validation';

export interface EventDoc {
  _id: string;
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
  occurred_at: Date;
  ingested_at: Date;
  request_id: string;
  position: number;
  context: Record<string, string>;
}

interface ItemDoc {
  _id: string;
  tenant: string;
  item_id: string;
  title: string;
  description: string;
  category: string;
  brand: string;
  price: number;
  in_stock: boolean;
  attributes: Record<string, string>;
  updated_at: Date;
  ingested_at: Date;
}

interface JsonDoc {
  _id: string;
  tenant: string;
  id: string;
  doc: unknown;
}

interface AppliedDoc {
  _id: string;
  consumer: string;
  tenant: string;
  event_id: string;
  applied_at: Date;
}

type ChurnDoc = Omit<ChurnScoreRecord, 'scoredAt'> & { _id: string; scoredAt: Date };

interface ForgottenDoc {
  _id: string;
  tenant: string;
  userKey: string;
  forgottenAt: number;
}

interface MessageIndexDoc {
  _id: string;
  tenant: string;
  userId: string;
  stream: string;
  seq: number;
  recordedAt?: number;
}

/**
 * The `_id` of a record keyed by several strings. JSON keeps the parts apart whatever they contain (a
 * separator character could appear inside a tenant or id and make two keys collide).
 */
const key = (...parts: string[]): string => JSON.stringify(parts);

/** The stored document of an event (exported for the adapter's own tests). */
export function toEventDoc(e: StoredEvent): EventDoc {
  return {
    _id: key(e.tenant, e.eventId),
    tenant: e.tenant,
    event_id: e.eventId,
    type: e.type,
    user_id: e.userId,
    session_id: e.sessionId,
    item_id: e.itemId,
    query: e.query,
    quantity: e.quantity,
    price: e.price,
    currency: e.currency,
    occurred_at: new Date(e.occurredAt),
    ingested_at: new Date(e.ingestedAt),
    request_id: e.requestId,
    position: e.position,
    context: e.context,
  };
}

function fromEventDoc(d: EventDoc): StoredEvent {
  return {
    tenant: d.tenant,
    eventId: d.event_id,
    type: d.type,
    userId: d.user_id,
    sessionId: d.session_id,
    itemId: d.item_id,
    query: d.query,
    quantity: d.quantity,
    price: d.price,
    currency: d.currency,
    occurredAt: d.occurred_at.getTime(),
    ingestedAt: d.ingested_at.getTime(),
    requestId: d.request_id,
    position: d.position,
    context: d.context,
  };
}

function toItemDoc(i: CatalogItem): ItemDoc {
  return {
    _id: key(i.tenant, i.itemId),
    tenant: i.tenant,
    item_id: i.itemId,
    title: i.title,
    description: i.description,
    category: i.category,
    brand: i.brand,
    price: i.price,
    in_stock: i.inStock,
    attributes: i.attributes,
    updated_at: new Date(i.updatedAt),
    ingested_at: new Date(i.ingestedAt),
  };
}

function fromItemDoc(d: ItemDoc): CatalogItem {
  return {
    tenant: d.tenant,
    itemId: d.item_id,
    title: d.title,
    description: d.description,
    category: d.category,
    brand: d.brand,
    price: d.price,
    inStock: d.in_stock,
    attributes: d.attributes,
    updatedAt: d.updated_at.getTime(),
    ingestedAt: d.ingested_at.getTime(),
  };
}

const DUPLICATE_KEY = 11000;
const NAMESPACE_EXISTS = 48;

/**
 * Codes after which the same request may succeed later: the driver's retryable codes (HostUnreachable,
 * HostNotFound, NetworkTimeout, ShutdownInProgress, ReadConcernMajorityNotAvailableYet, PrimarySteppedDown,
 * ExceededTimeLimit, SocketException, NotWritablePrimary, InterruptedAtShutdown,
 * InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary) and WriteConcernTimeout
 * (the write happened on the primary but may not survive a failover).
 */
const TRANSIENT_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 64]);

const TRANSIENT_LABELS = [
  MongoErrorLabel.RetryableWriteError,
  MongoErrorLabel.TransientTransactionError,
  MongoErrorLabel.UnknownTransactionCommitResult,
  MongoErrorLabel.ResetPool,
  MongoErrorLabel.PoolRequestedRetry,
  MongoErrorLabel.RetryableError,
  MongoErrorLabel.SystemOverloadedError,
];

/** `writeErrors` is typed one-or-many by the driver; always a list here. */
function writeErrorsOf(err: MongoBulkWriteError): WriteError[] {
  const errors: unknown = err.writeErrors;
  if (Array.isArray(errors)) return errors as WriteError[];
  return errors ? [errors as WriteError] : [];
}

/**
 * The driver reports a write concern failure of a bulk write in two shapes: as `err` (after a reply with
 * `writeConcernError`) or only inside `result` (when write errors were reported first).
 */
function writeConcernErrorOf(err: MongoBulkWriteError): WriteConcernError | undefined {
  return err.err ?? err.result?.getWriteConcernError();
}

const transientCode = (code: unknown): boolean => typeof code === 'number' && TRANSIENT_CODES.has(code);

function isTransient(err: MongoError): boolean {
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoTopologyClosedError ||
    err instanceof MongoClientClosedError ||
    err instanceof MongoOperationTimeoutError
  ) {
    return true;
  }
  if (TRANSIENT_LABELS.some((label) => err.hasErrorLabel(label))) return true;
  if (err instanceof MongoBulkWriteError) {
    const failed = writeErrorsOf(err).filter((w) => w.code !== DUPLICATE_KEY);
    if (failed.length > 0) return failed.every((w) => transientCode(w.code));
    const concern = writeConcernErrorOf(err);
    if (concern) return transientCode(concern.code);
    // The command failed as a whole and the driver wrapped the failure, keeping its code and labels but
    // not its class: without a server code it was the network, server selection or a closed client.
    return err.code === undefined || transientCode(err.code);
  }
  return transientCode(err.code) || (err instanceof MongoServerError && transientCode(err.writeConcernError?.code));
}

/** Driver errors become StoreUnavailableError (retry later) or StoreError; anything else passes through. */
function translate(err: unknown): unknown {
  if (!(err instanceof MongoError)) return err;
  const detail = err instanceof MongoServerError && err.codeName ? ` (${err.codeName})` : '';
  const message = `mongodb: ${err.message}${detail}`;
  return isTransient(err)
    ? new StoreUnavailableError(message, { cause: err })
    : new StoreError(message, { cause: err });
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translate(err);
  }
}

/**
 * The bulk write error when its only failures are duplicate keys (the idempotent outcome asked for) and
 * every write it did was acknowledged as asked; undefined for any other failure, which must never be
 * reported as success.
 */
function duplicatesOnly(err: unknown): MongoBulkWriteError | undefined {
  if (!(err instanceof MongoBulkWriteError)) return undefined;
  const errors = writeErrorsOf(err);
  if (errors.length === 0 || errors.some((w) => w.code !== DUPLICATE_KEY)) return undefined;
  return writeConcernErrorOf(err) ? undefined : err;
}

/** Ids per query: keeps each `$in` list far below the 16 MiB command limit. */
const IN_CHUNK = 1000;
/** Rows per round trip of the item and document scans. */
const SCAN_PAGE = 1000;

const DOCUMENT_COLLECTIONS: readonly DocumentCollection[] = [
  'user_features',
  'item_features',
  'item_covisits',
  'feature_meta',
  'experiment_requests',
];

/** Created at open: a collection first created inside a transaction fails on older and sharded servers. */
const COLLECTIONS = [
  'events',
  'items',
  'churn_scores',
  'applied',
  'message_index',
  'forgotten_users',
  ...DOCUMENT_COLLECTIONS,
];

const INDEXES: Record<string, IndexDescription[]> = {
  // _id is the (tenant, event id) / (tenant, item id) key: uniqueness comes with it.
  events: [
    // One tenant's scan and stats: equality on tenant, then event-time order.
    { key: { tenant: 1, occurred_at: 1, event_id: 1 }, name: 'events_by_time' },
    // Scan and stats across tenants: the same order with tenant last.
    { key: { occurred_at: 1, event_id: 1, tenant: 1 }, name: 'events_by_time_all_tenants' },
    // Forgetting a user: every event of one (tenant, user).
    { key: { tenant: 1, user_id: 1 }, name: 'events_by_user' },
  ],
  message_index: [
    { key: { tenant: 1, userId: 1, stream: 1 }, name: 'message_index_by_user' },
    // Retention: one stream's positions recorded before a cutoff.
    { key: { stream: 1, recordedAt: 1 }, name: 'message_index_by_time' },
  ],
  // _id is (tenant, user key); retention deletes by time, training lists a tenant's.
  forgotten_users: [
    { key: { forgottenAt: 1 }, name: 'forgotten_by_time' },
    { key: { tenant: 1 }, name: 'forgotten_by_tenant' },
  ],
  items: [{ key: { tenant: 1, item_id: 1 }, name: 'items_by_tenant' }],
  churn_scores: [{ key: { tenant: 1, risk: -1, userId: 1 }, name: 'churn_by_risk' }],
  // Retention: one consumer's markers older than a cutoff.
  applied: [{ key: { consumer: 1, applied_at: 1 }, name: 'applied_by_time' }],
  ...Object.fromEntries(DOCUMENT_COLLECTIONS.map((c) => [c, [{ key: { tenant: 1, id: 1 }, name: `${c}_by_tenant` }]])),
};

/** One tenant's event order (tenant is fixed by the filter, so the index on tenant first serves it). */
const eventOrder = (dir: 1 | -1) => ({ occurred_at: dir, event_id: dir }) as const;
const eventOrderAllTenants = (dir: 1 | -1) => ({ occurred_at: dir, event_id: dir, tenant: dir }) as const;

/**
 * Snapshot reads and majority commits: nothing a transaction read (an applied marker, a counter) can be
 * rolled back by a failover after the transaction committed on it.
 */
const TRANSACTION: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: new WriteConcern('majority'),
  readPreference: 'primary',
};

/** The driver's default database is `test`; ours is this one when the URL names none. */
export const DEFAULT_DATABASE = 'aisle';

/** The database the URL's path names, or `aisle`. Works for seed lists and `mongodb+srv://`. */
export function databaseName(url: string): string {
  // The host list cannot contain '/' or '?' (credentials and socket paths have them percent-encoded).
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(url)?.[1] ?? '';
  return path === '' ? DEFAULT_DATABASE : decodeURIComponent(path);
}

/**
 * Client options for what the URL leaves unsaid. The driver lets code options override URL options, so a
 * default is only given where the URL has none of its keys: an operator's URL always wins.
 */
export function clientOptions(url: string): MongoClientOptions {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const given = new Set([...new URLSearchParams(query).keys()].map((k) => k.toLowerCase()));
  const unsaid = (...keys: string[]): boolean => keys.every((k) => !given.has(k.toLowerCase()));
  return {
    ...(unsaid('serverSelectionTimeoutMS') && { serverSelectionTimeoutMS: 5000 }),
    // An event acknowledged to its producer must survive a failover: only a majority-written one does.
    ...(unsaid('w', 'journal', 'wtimeoutMS') && { writeConcern: { w: 'majority' } }),
    // Reads outside transactions never see a write that a failover can still roll back.
    ...(unsaid('readConcernLevel') && { readConcernLevel: 'majority' }),
  };
}

/**
 * What the adapter uses of the driver: `MongoStore.open` builds it from a MongoClient and its Db. It is the
 * seam for tests, which hand in collections and sessions that fail the way the driver fails.
 */
export interface MongoDriver {
  command(cmd: Document): Promise<Document>;
  collection<T extends Document>(name: string): Collection<T>;
  createCollection(name: string): Promise<unknown>;
  startSession(): ClientSession;
  close(): Promise<void>;
}

/** Refuses a standalone server: document transactions need a replica set (or a sharded cluster). */
async function requireReplicaSet(driver: MongoDriver): Promise<void> {
  const hello = await driver.command({ hello: 1 });
  if (typeof hello['setName'] === 'string' || hello['msg'] === 'isdbgrid') return;
  // A member started with --replSet whose set was never initiated (the SDAM spec's "RSGhost").
  if (hello['isreplicaset'] === true) {
    throw new StoreError(
      'mongodb: the server was started with --replSet but its replica set is not initiated; run rs.initiate() ' +
        'once (see README "Storage")',
    );
  }
  throw new StoreError(
    'mongodb: the server is a standalone mongod, not a replica set member; the store needs a replica set for ' +
      'its transactions (start mongod with --replSet rs0 and run rs.initiate() once; see README "Storage")',
  );
}

async function createSchema(driver: MongoDriver): Promise<void> {
  for (const name of COLLECTIONS) {
    try {
      await driver.createCollection(name);
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === NAMESPACE_EXISTS)) throw err;
    }
  }
  for (const [name, indexes] of Object.entries(INDEXES)) await driver.collection(name).createIndexes(indexes);
}

/**
 * Production store on MongoDB (a replica set: the k8s manifests and compose file deploy one). Collections
 * and indexes are declared here and created at open. No cursor is held across a `yield`: scans read pages
 * by key, so a slow consumer never meets a cursor the server timed out.
 */
export class MongoStore implements Store {
  readonly kind = 'mongodb' as const;
  readonly events: EventRepository;
  readonly items: ItemRepository;
  readonly documents: DocumentRepository;
  readonly churnScores: ChurnScoreRepository;
  readonly messages: MessageIndexRepository;
  readonly forgotten: ForgottenRepository;
  /** The port promises serialized transactions; it also keeps this process's batches from conflicting. */
  private readonly transactions = new Mutex();

  private constructor(private readonly driver: MongoDriver) {
    this.events = this.makeEvents();
    this.items = this.makeItems();
    this.documents = this.makeDocuments();
    this.churnScores = this.makeChurnScores();
    this.messages = this.makeMessages();
    this.forgotten = this.makeForgotten();
  }

  private makeForgotten(): ForgottenRepository {
    const coll = (): Collection<ForgottenDoc> => this.driver.collection<ForgottenDoc>('forgotten_users');
    const toMap = (docs: ForgottenDoc[]) => new Map(docs.map((d) => [d.userKey, d.forgottenAt]));
    return {
      mark: (tenant, userKey, at) =>
        guard(async () => {
          const _id = key(tenant, userKey);
          await coll().updateOne(
            { _id },
            { $max: { forgottenAt: at }, $setOnInsert: { tenant, userKey } },
            { upsert: true },
          );
        }),
      getMany: (tenant, userKeys) =>
        guard(async () =>
          toMap(
            await coll()
              .find({ tenant, userKey: { $in: [...new Set(userKeys)] } })
              .toArray(),
          ),
        ),
      list: (tenant) => guard(async () => toMap(await coll().find({ tenant }).toArray())),
      pruneBefore: (before) =>
        guard(async () => ({ deleted: (await coll().deleteMany({ forgottenAt: { $lt: before } })).deletedCount })),
    };
  }

  private makeMessages(): MessageIndexRepository {
    const coll = (): Collection<MessageIndexDoc> => this.driver.collection<MessageIndexDoc>('message_index');
    return {
      record: (ps) =>
        guard(async () => {
          if (ps.length === 0) return;
          const recordedAt = Date.now();
          await coll().bulkWrite(
            ps.map((p) => {
              const _id = key(p.tenant, p.userId, p.stream, String(p.seq));
              return { replaceOne: { filter: { _id }, replacement: { _id, ...p, recordedAt }, upsert: true } };
            }),
            { ordered: false },
          );
        }),
      take: (tenant, userId, streams) =>
        guard(async () => {
          const filter = { tenant, userId, stream: { $in: [...streams] } };
          const docs = await coll()
            .find(filter, { sort: { seq: 1 } })
            .toArray();
          await coll().deleteMany({ _id: { $in: docs.map((d) => d._id) } });
          return docs.map((d) => ({ stream: d.stream, seq: d.seq }));
        }),
      // Positions recorded before retention have no date: they stay until their user is forgotten.
      pruneBefore: (stream, before, limit) =>
        guard(async () => {
          const ids = (
            await coll()
              .find({ stream, recordedAt: { $lt: before } }, { projection: { _id: 1 }, limit: limit + 1 })
              .toArray()
          ).map((d) => d._id);
          const batch = ids.slice(0, limit);
          const { deletedCount } =
            batch.length > 0 ? await coll().deleteMany({ _id: { $in: batch } }) : { deletedCount: 0 };
          return { deleted: deletedCount, more: ids.length > limit };
        }),
    };
  }

  /** MongoDB keeps no copy of a deleted document that a query could reach; its oplog ages out by size. */
  async scrub(): Promise<void> {
    return Promise.resolve();
  }

  static async open(url: string, opts: { dbName?: string } = {}): Promise<MongoStore> {
    // Nothing is connected yet: a URL the driver cannot parse or a bad database name is a StoreError here.
    const { client, db } = await guard(async () => {
      const c = new MongoClient(url, clientOptions(url));
      return { client: c, db: c.db(opts.dbName ?? databaseName(url)) };
    });
    return MongoStore.start({
      command: (cmd) => db.command(cmd),
      collection: (name) => db.collection(name),
      createCollection: (name) => db.createCollection(name),
      startSession: () => client.startSession(),
      close: () => client.close(),
    });
  }

  /** Checks the deployment and creates collections and indexes; closes the driver if any of it fails. */
  static async start(driver: MongoDriver): Promise<MongoStore> {
    try {
      await requireReplicaSet(driver);
      await createSchema(driver);
    } catch (err) {
      // The failure to report is the one above; a failing close must not replace it.
      await driver.close().catch(() => undefined);
      throw translate(err);
    }
    return new MongoStore(driver);
  }

  private get eventsColl(): Collection<EventDoc> {
    return this.driver.collection<EventDoc>('events');
  }

  private get itemsColl(): Collection<ItemDoc> {
    return this.driver.collection<ItemDoc>('items');
  }

  private docs(c: DocumentCollection): Collection<JsonDoc> {
    return this.driver.collection<JsonDoc>(c);
  }

  private makeChurnScores(): ChurnScoreRepository {
    const coll = (): Collection<ChurnDoc> => this.driver.collection<ChurnDoc>('churn_scores');
    const toRecord = ({ _id, scoredAt, ...r }: ChurnDoc): ChurnScoreRecord => ({ ...r, scoredAt: scoredAt.getTime() });
    return {
      upsertMany: (rs) =>
        guard(async () => {
          checkChurnScores(rs);
          if (rs.length === 0) return;
          await coll().bulkWrite(
            rs.map((r) => ({
              replaceOne: {
                filter: { _id: key(r.tenant, r.userId) },
                replacement: { ...r, _id: key(r.tenant, r.userId), scoredAt: new Date(r.scoredAt) },
                upsert: true,
              },
            })),
            { ordered: false },
          );
        }),
      getMany: (tenant, ids) =>
        guard(async () => {
          const out = new Map<string, ChurnScoreRecord>();
          for (const part of chunks([...new Set(ids)], IN_CHUNK)) {
            const docs = await coll()
              .find({ _id: { $in: part.map((id) => key(tenant, id)) } })
              .toArray();
            for (const d of docs) out.set(d.userId, toRecord(d));
          }
          return out;
        }),
      listAtRisk: (tenant, minRisk, limit, after) =>
        guard(async () => {
          // The driver reads limit 0 as "no limit" and a negative one as "one batch of that many".
          if (limit <= 0) return [];
          const filter = after
            ? {
                tenant,
                risk: { $gte: minRisk },
                $or: [{ risk: { $lt: after.risk } }, { risk: after.risk, userId: { $gt: after.userId } }],
              }
            : { tenant, risk: { $gte: minRisk } };
          const docs = await coll()
            .find(filter, { sort: { risk: -1, userId: 1 }, limit })
            .toArray();
          return docs.map(toRecord);
        }),
      deleteMany: (tenant, ids) =>
        guard(async () => (await coll().deleteMany({ _id: { $in: ids.map((id) => key(tenant, id)) } })).deletedCount),
    };
  }

  private makeEvents(): EventRepository {
    return {
      insertMany: (events) =>
        guard(async () => {
          checkEvents(events);
          if (events.length === 0) return { inserted: 0, conflicting: [] };
          try {
            const r = await this.eventsColl.insertMany(events.map(toEventDoc), { ordered: false });
            return { inserted: r.insertedCount, conflicting: [] };
          } catch (err) {
            const duplicates = duplicatesOnly(err);
            if (!duplicates) throw err;
            // Re-sends are fine; a stored event with other content under the same key is a conflict.
            const failed = writeErrorsOf(duplicates).map((w) => w.index);
            const keys = failed.map((i) => toEventDoc(events[i] as StoredEvent)._id);
            const stored = new Map<string, StoredEvent>();
            for (const d of await this.eventsColl.find({ _id: { $in: keys } }).toArray())
              stored.set(d._id, fromEventDoc(d));
            const conflicting = failed.filter((i, k) => {
              const existing = stored.get(keys[k] as string);
              return existing !== undefined && !sameEventContent(existing, events[i] as StoredEvent);
            });
            return { inserted: duplicates.insertedCount, conflicting };
          }
        }),
      count: (filter) =>
        guard(() => this.eventsColl.countDocuments(filter?.tenant === undefined ? {} : { tenant: filter.tenant })),
      stats: (tenant) =>
        guard(async () => {
          // Two index lookups for the ends instead of a $group over every event.
          const filter: Filter<EventDoc> = tenant === undefined ? {} : { tenant };
          const end = async (dir: 1 | -1): Promise<number | undefined> => {
            const sort = tenant === undefined ? eventOrderAllTenants(dir) : eventOrder(dir);
            const d = await this.eventsColl.findOne(filter, { sort, projection: { occurred_at: 1 } });
            return d?.occurred_at.getTime();
          };
          const [count, minOccurredAt, maxOccurredAt] = await Promise.all([
            this.eventsColl.countDocuments(filter),
            end(1),
            end(-1),
          ]);
          return { count, minOccurredAt, maxOccurredAt };
        }),
      scan: (opts = {}) => this.scanEvents(opts),
      // The server deletes along events_by_time_all_tenants (occurred_at first), yielding as it goes.
      deleteBefore: (before) =>
        guard(async () => ({
          deleted: (await this.eventsColl.deleteMany({ occurred_at: { $lt: new Date(before) } })).deletedCount,
        })),
      forgetUser: (tenant, userId) =>
        guard(async () => {
          const ids = await this.eventsColl
            .find({ tenant, user_id: userId }, { projection: { event_id: 1 } })
            .toArray();
          const r = await this.eventsColl.deleteMany({ tenant, user_id: userId });
          return { deleted: r.deletedCount, eventIds: ids.map((d) => d.event_id) };
        }),
    };
  }

  /** Keyset pages in (occurred_at, event_id, tenant) order, each read whole before it is yielded. */
  private async *scanEvents(opts: EventScanOptions): AsyncIterable<StoredEvent> {
    const pageSize = Math.max(1, opts.pageSize ?? 5000);
    const tenant = opts.tenant;
    const sort = tenant === undefined ? eventOrderAllTenants(1) : eventOrder(1);
    const sameTenant: Filter<EventDoc> = tenant === undefined ? {} : { tenant };
    const before: Record<string, Date> = opts.toMs === undefined ? {} : { $lt: new Date(opts.toMs) };
    const range: Record<string, Date> = { ...before };
    if (opts.fromMs !== undefined) range['$gte'] = new Date(opts.fromMs);
    let filter: Filter<EventDoc> = Object.keys(range).length ? { ...sameTenant, occurred_at: range } : sameTenant;
    for (;;) {
      const page = await guard(() => this.eventsColl.find(filter, { sort, limit: pageSize }).toArray());
      for (const d of page) yield fromEventDoc(d);
      const last = page[page.length - 1];
      if (last === undefined || page.length < pageSize) return;
      // Each branch is an index range of its own, so the server merges them in order without a sort.
      const after: Filter<EventDoc>[] = [
        { ...sameTenant, occurred_at: { ...before, $gt: last.occurred_at } },
        { ...sameTenant, occurred_at: last.occurred_at, event_id: { $gt: last.event_id } },
      ];
      if (tenant === undefined) {
        after.push({ occurred_at: last.occurred_at, event_id: last.event_id, tenant: { $gt: last.tenant } });
      }
      filter = { $or: after };
    }
  }

  private makeItems(): ItemRepository {
    return {
      upsertMany: (items) =>
        guard(async () => {
          checkItems(items);
          if (items.length === 0) return { written: 0 };
          return { written: await this.upsertItems(items.map(toItemDoc)) };
        }),
      getMany: (tenant, ids) =>
        guard(async () => {
          const out = new Map<string, CatalogItem>();
          for (const part of chunks([...new Set(ids)], IN_CHUNK)) {
            const docs = await this.itemsColl.find({ _id: { $in: part.map((id) => key(tenant, id)) } }).toArray();
            for (const d of docs) out.set(d.item_id, fromItemDoc(d));
          }
          return out;
        }),
      count: (filter) =>
        guard(() => this.itemsColl.countDocuments(filter?.tenant === undefined ? {} : { tenant: filter.tenant })),
      scan: (tenant) =>
        this.pages(
          (after) =>
            this.itemsColl.find({ tenant, item_id: { $gt: after } }, { sort: { item_id: 1 }, limit: SCAN_PAGE }),
          (d) => d.item_id,
          fromItemDoc,
        ),
    };
  }

  /**
   * Replaces each stored item that is not newer. The filter matches only such a version, so an upsert that
   * does not match collides on _id: the stored version is newer (keep it), or the item did not exist when
   * the filter ran and a concurrent writer created it first. The server does not retry that collision for a
   * range filter, so the colliding writes are tried once more: the item exists by then (items are never
   * deleted), and a second collision can only mean a newer stored version.
   */
  private async upsertItems(docs: readonly ItemDoc[]): Promise<number> {
    let pending = docs;
    let written = 0;
    for (let attempt = 1; ; attempt++) {
      const ops: AnyBulkWriteOperation<ItemDoc>[] = pending.map((doc) => ({
        replaceOne: { filter: { _id: doc._id, updated_at: { $lte: doc.updated_at } }, replacement: doc, upsert: true },
      }));
      try {
        const r = await this.itemsColl.bulkWrite(ops, { ordered: false });
        return written + r.upsertedCount + r.matchedCount;
      } catch (err) {
        const duplicates = duplicatesOnly(err);
        if (!duplicates) throw err;
        written += duplicates.upsertedCount + duplicates.matchedCount;
        if (attempt === 2) return written;
        pending = writeErrorsOf(duplicates).map((w) => pending[w.index] as ItemDoc);
      }
    }
  }

  /** Keyset pages by a string key, each read whole before it is yielded (no cursor held across yields). */
  private async *pages<D extends Document, R>(
    find: (after: string) => { toArray(): Promise<D[]> },
    keyOf: (d: D) => string,
    map: (d: D) => R,
  ): AsyncIterable<R> {
    let after = '';
    for (;;) {
      const page = await guard(() => find(after).toArray());
      for (const d of page) yield map(d);
      const last = page[page.length - 1];
      if (last === undefined || page.length < SCAN_PAGE) return;
      after = keyOf(last);
    }
  }

  private async getDocs<T>(
    c: DocumentCollection,
    tenant: string,
    ids: readonly string[],
    session?: ClientSession,
  ): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    for (const part of chunks([...new Set(ids)], IN_CHUNK)) {
      const docs = await this.docs(c)
        .find({ _id: { $in: part.map((id) => key(tenant, id)) } }, session ? { session } : {})
        .toArray();
      for (const d of docs) out.set(d.id, d.doc as T);
    }
    return out;
  }

  /** Operations inside a transaction leave driver errors untranslated: withTransaction retries on their labels. */
  private transaction(session: ClientSession): DocumentTx {
    return {
      getMany: (c, t, ids) => this.getDocs(c, t, ids, session),
      putMany: async (c, t, docs) => {
        if (docs.size === 0) return;
        await this.docs(c).bulkWrite(
          [...docs].map(([id, doc]) => ({
            replaceOne: {
              filter: { _id: key(t, id) },
              replacement: { _id: key(t, id), tenant: t, id, doc },
              upsert: true,
            },
          })),
          { session, ordered: false },
        );
      },
      deleteMany: async (c, t, ids) => {
        if (ids.length > 0) await this.docs(c).deleteMany({ _id: { $in: ids.map((id) => key(t, id)) } }, { session });
      },
      markApplied: async (consumer, tenant, eventIds) => {
        const ids = [...new Set(eventIds)];
        if (ids.length === 0) return new Set<string>();
        const r = await this.driver.collection<AppliedDoc>('applied').bulkWrite(
          ids.map((eventId) => ({
            updateOne: {
              filter: { _id: key(consumer, tenant, eventId) },
              update: { $setOnInsert: { consumer, tenant, event_id: eventId, applied_at: new Date() } },
              upsert: true,
            },
          })),
          { session, ordered: false },
        );
        // upsertedIds is keyed by operation index: the markers this call created.
        return new Set(Object.keys(r.upsertedIds).map((i) => ids[Number(i)] as string));
      },
    };
  }

  private makeDocuments(): DocumentRepository {
    return {
      transact: (fn) =>
        this.transactions.run(() =>
          guard(async () => {
            const session = this.driver.startSession();
            try {
              return await session.withTransaction(() => fn(this.transaction(session)), TRANSACTION);
            } finally {
              // Only returns the session to the pool; the outcome above is what the caller must see.
              await session.endSession().catch(() => undefined);
            }
          }),
        ),
      getMany: (c, t, ids) => guard(() => this.getDocs(c, t, ids)),
      scan: <T>(c: DocumentCollection, tenant: string) =>
        this.pages(
          (after) => this.docs(c).find({ tenant, id: { $gt: after } }, { sort: { id: 1 }, limit: SCAN_PAGE }),
          (d) => d.id,
          (d) => ({ id: d.id, doc: d.doc as T }),
        ),
      count: (c, tenant) => guard(() => this.docs(c).countDocuments(tenant === undefined ? {} : { tenant })),
      pruneApplied: (consumer, before) =>
        guard(async () => ({
          deleted: (
            await this.driver
              .collection<AppliedDoc>('applied')
              .deleteMany({ consumer, applied_at: { $lt: new Date(before) } })
          ).deletedCount,
        })),
      deleteMany: (c, tenant, ids) =>
        guard(async () => (await this.docs(c).deleteMany({ tenant, id: { $in: [...ids] } })).deletedCount),
      forgetApplied: (consumer, tenant, eventIds) =>
        guard(
          async () =>
            (
              await this.driver
                .collection<AppliedDoc>('applied')
                .deleteMany({ _id: { $in: eventIds.map((id) => key(consumer, tenant, id)) } })
            ).deletedCount,
        ),
      listIds: (c, tenant, after, limit) =>
        guard(async () => {
          if (limit <= 0) return [];
          const docs = await this.docs(c)
            .find({ tenant, id: { $gt: after } }, { sort: { id: 1 }, limit, projection: { id: 1 } })
            .toArray();
          return docs.map((d) => d.id);
        }),
    };
  }

  async ping(): Promise<void> {
    await guard(() => this.driver.command({ ping: 1 }));
  }

  async close(): Promise<void> {
    await this.transactions.run(() => this.driver.close());
  }
}
