import {
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  type ClientSession,
  type Collection,
  type Db,
} from 'mongodb';
import {
  StoreUnavailableError,
  type CatalogItem,
  type ChurnScoreRecord,
  type ChurnScoreRepository,
  type DocumentCollection,
  type DocumentRepository,
  type DocumentTx,
  type EventRepository,
  type ItemRepository,
  type Store,
  type StoredEvent,
} from './ports';

interface EventDoc {
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
  applied_at: Date;
}

const key = (tenant: string, id: string): string => `${tenant}\u001f${id}`;

function toEventDoc(e: StoredEvent): EventDoc {
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

/** A bulk write whose only failures are duplicate keys: the idempotent outcome we asked for. */
function onlyDuplicateKeys(err: unknown): err is MongoBulkWriteError & { writeErrors: Array<{ code: number }> } {
  if (!(err instanceof MongoBulkWriteError)) return false;
  const errors: unknown = err.writeErrors;
  const list = Array.isArray(errors) ? (errors as Array<{ code: number }>) : [errors as { code: number }];
  return list.every((w) => w.code === DUPLICATE_KEY);
}

/** Network, selection and "not primary" failures are transient. */
function translate(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const name = (err as { name?: unknown }).name;
  if (typeof name === 'string' && /Mongo(Network|ServerSelection|NotConnected|Topology|PoolCleared)/.test(name)) {
    return new StoreUnavailableError(`mongodb: ${(err as Error).message}`, { cause: err });
  }
  if (err instanceof MongoServerError && err.hasErrorLabel('TransientTransactionError')) {
    return new StoreUnavailableError(`mongodb: ${err.message}`, { cause: err });
  }
  return err;
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translate(err);
  }
}

/**
 * Production store on MongoDB. Indexes are declared here and created at open. Document transactions
 * need a replica set (the k8s manifests deploy one).
 */
export class MongoStore implements Store {
  readonly kind = 'mongodb' as const;
  readonly events: EventRepository;
  readonly items: ItemRepository;
  readonly documents: DocumentRepository;
  readonly churnScores: ChurnScoreRepository;

  private constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
  ) {
    this.events = this.makeEvents();
    this.items = this.makeItems();
    this.documents = this.makeDocuments();
    this.churnScores = this.makeChurnScores();
  }

  private makeChurnScores(): ChurnScoreRepository {
    type Doc = Omit<ChurnScoreRecord, 'scoredAt'> & { _id: string; scoredAt: Date };
    const coll = this.db.collection<Doc>('churn_scores');
    const toRecord = ({ _id, scoredAt, ...r }: Doc): ChurnScoreRecord => ({ ...r, scoredAt: scoredAt.getTime() });
    return {
      upsertMany: (rs) =>
        guard(async () => {
          if (rs.length === 0) return;
          await coll.bulkWrite(
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
          const docs = await coll.find({ _id: { $in: [...new Set(ids)].map((id) => key(tenant, id)) } }).toArray();
          return new Map(docs.map((d) => [d.userId, toRecord(d)]));
        }),
      listAtRisk: (tenant, minRisk, limit, after) =>
        guard(async () => {
          const filter = after
            ? {
                tenant,
                risk: { $gte: minRisk },
                $or: [{ risk: { $lt: after.risk } }, { risk: after.risk, userId: { $gt: after.userId } }],
              }
            : { tenant, risk: { $gte: minRisk } };
          const docs = await coll.find(filter, { sort: { risk: -1, userId: 1 }, limit }).toArray();
          return docs.map(toRecord);
        }),
    };
  }

  static async open(url: string, opts: { dbName?: string } = {}): Promise<MongoStore> {
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000, retryWrites: true });
    await guard(() => client.connect());
    const db = client.db(opts.dbName);
    const store = new MongoStore(client, db);
    await guard(() => store.createIndexes());
    return store;
  }

  private get eventsColl(): Collection<EventDoc> {
    return this.db.collection<EventDoc>('events');
  }

  private get itemsColl(): Collection<ItemDoc> {
    return this.db.collection<ItemDoc>('items');
  }

  private docs(c: DocumentCollection): Collection<JsonDoc> {
    return this.db.collection<JsonDoc>(c);
  }

  private get applied(): Collection<AppliedDoc> {
    return this.db.collection<AppliedDoc>('applied');
  }

  private async createIndexes(): Promise<void> {
    // _id is (tenant, event_id) / (tenant, item_id): uniqueness comes with it.
    await this.eventsColl.createIndexes([
      { key: { tenant: 1, occurred_at: 1, event_id: 1 }, name: 'events_by_time' },
      { key: { tenant: 1, user_id: 1, occurred_at: 1 }, name: 'events_by_user' },
    ]);
    await this.itemsColl.createIndexes([{ key: { tenant: 1, item_id: 1 }, name: 'items_by_tenant' }]);
    await this.db
      .collection('churn_scores')
      .createIndexes([{ key: { tenant: 1, risk: -1, userId: 1 }, name: 'churn_by_risk' }]);
    for (const c of ['user_features', 'item_features', 'item_covisits', 'feature_meta'] as const) {
      await this.docs(c).createIndexes([{ key: { tenant: 1, id: 1 }, name: `${c}_by_tenant` }]);
    }
  }

  private makeEvents(): EventRepository {
    return {
      insertMany: (events) =>
        guard(async () => {
          if (events.length === 0) return { inserted: 0 };
          try {
            const r = await this.eventsColl.insertMany(events.map(toEventDoc), { ordered: false });
            return { inserted: r.insertedCount };
          } catch (err) {
            if (onlyDuplicateKeys(err)) {
              return { inserted: err.insertedCount };
            }
            throw err;
          }
        }),
      count: (filter) =>
        guard(() => this.eventsColl.countDocuments(filter?.tenant === undefined ? {} : { tenant: filter.tenant })),
      stats: (tenant) =>
        guard(async () => {
          const match = tenant === undefined ? {} : { tenant };
          const [row] = await this.eventsColl
            .aggregate<{ n: number; lo: Date; hi: Date }>([
              { $match: match },
              { $group: { _id: null, n: { $sum: 1 }, lo: { $min: '$occurred_at' }, hi: { $max: '$occurred_at' } } },
            ])
            .toArray();
          return { count: row?.n ?? 0, minOccurredAt: row?.lo.getTime(), maxOccurredAt: row?.hi.getTime() };
        }),
      scan: (opts = {}) => {
        const coll = this.eventsColl;
        return (async function* () {
          const filter: Record<string, unknown> = {};
          if (opts.tenant !== undefined) filter['tenant'] = opts.tenant;
          const range: Record<string, Date> = {};
          if (opts.fromMs !== undefined) range['$gte'] = new Date(opts.fromMs);
          if (opts.toMs !== undefined) range['$lt'] = new Date(opts.toMs);
          if (Object.keys(range).length) filter['occurred_at'] = range;
          const cursor = coll.find(filter, {
            sort: { occurred_at: 1, event_id: 1, tenant: 1 },
            batchSize: opts.pageSize ?? 5000,
          });
          try {
            for await (const d of cursor) yield fromEventDoc(d);
          } catch (err) {
            throw translate(err);
          }
        })();
      },
    };
  }

  private makeItems(): ItemRepository {
    return {
      upsertMany: (items) =>
        guard(async () => {
          if (items.length === 0) return { written: 0 };
          const ops = items.map((i) => {
            const doc: ItemDoc = {
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
            // Matches only when the stored version is not newer; otherwise the upsert collides on
            // _id and is dropped (duplicate key), which is exactly "keep the newer one".
            return {
              replaceOne: {
                filter: { _id: doc._id, updated_at: { $lte: doc.updated_at } },
                replacement: doc,
                upsert: true,
              },
            };
          });
          try {
            const r = await this.itemsColl.bulkWrite(ops, { ordered: false });
            return { written: r.upsertedCount + r.matchedCount };
          } catch (err) {
            if (onlyDuplicateKeys(err)) {
              return { written: items.length - err.writeErrors.length };
            }
            throw err;
          }
        }),
      getMany: (tenant, ids) =>
        guard(async () => {
          const docs = await this.itemsColl
            .find({ _id: { $in: [...new Set(ids)].map((id) => key(tenant, id)) } })
            .toArray();
          return new Map(docs.map((d) => [d.item_id, fromItemDoc(d)]));
        }),
      count: (filter) =>
        guard(() => this.itemsColl.countDocuments(filter?.tenant === undefined ? {} : { tenant: filter.tenant })),
      scan: (tenant) => {
        const coll = this.itemsColl;
        return (async function* () {
          for await (const d of coll.find({ tenant }, { sort: { item_id: 1 } })) yield fromItemDoc(d);
        })();
      },
    };
  }

  private makeDocuments(): DocumentRepository {
    const getMany = async <T>(
      c: DocumentCollection,
      tenant: string,
      ids: readonly string[],
      session?: ClientSession,
    ): Promise<Map<string, T>> => {
      const docs = await this.docs(c)
        .find({ _id: { $in: [...new Set(ids)].map((id) => key(tenant, id)) } }, session ? { session } : {})
        .toArray();
      return new Map(docs.map((d) => [d.id, d.doc as T]));
    };
    return {
      transact: <R>(fn: (tx: DocumentTx) => Promise<R>) =>
        guard(async () => {
          const session = this.client.startSession();
          try {
            let result!: R;
            await session.withTransaction(async () => {
              const tx: DocumentTx = {
                getMany: (c, t, ids) => getMany(c, t, ids, session),
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
                markApplied: async (consumer, tenant, eventId) => {
                  const r = await this.applied.updateOne(
                    { _id: `${consumer}\u001f${key(tenant, eventId)}` },
                    { $setOnInsert: { applied_at: new Date() } },
                    { upsert: true, session },
                  );
                  return r.upsertedCount === 1;
                },
              };
              result = await fn(tx);
            });
            return result;
          } finally {
            await session.endSession();
          }
        }),
      getMany: (c, t, ids) => guard(() => getMany(c, t, ids)),
      scan: <T>(c: DocumentCollection, tenant: string) => {
        const coll = this.docs(c);
        return (async function* () {
          for await (const d of coll.find({ tenant }, { sort: { id: 1 } })) yield { id: d.id, doc: d.doc as T };
        })();
      },
      count: (c, tenant) => guard(() => this.docs(c).countDocuments(tenant === undefined ? {} : { tenant })),
      listIds: (c, tenant, after, limit) =>
        guard(async () =>
          (
            await this.docs(c)
              .find({ tenant, id: { $gt: after } }, { sort: { id: 1 }, limit, projection: { id: 1 } })
              .toArray()
          ).map((d) => d.id),
        ),
    };
  }

  async ping(): Promise<void> {
    await guard(() => this.db.command({ ping: 1 }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
