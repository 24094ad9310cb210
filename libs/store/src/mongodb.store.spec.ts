import {
  MongoBulkWriteError,
  MongoClient,
  MongoErrorLabel,
  MongoNetworkError,
  MongoServerError,
  MongoServerSelectionError,
  MongoWriteConcernError,
  TopologyType,
  type BulkWriteOperationError,
  type BulkWriteResult,
  type ClientSession,
  type Collection,
  type Document,
  type TopologyDescription,
  type WriteConcernError,
  type WriteConcernErrorData,
  type WriteError,
} from 'mongodb';
import { clientOptions, databaseName, MongoStore, toEventDoc, type MongoDriver } from './mongodb.store';
import { catalogItem, storedEvent } from '../test/fixtures';
import { StoreError, StoreUnavailableError } from './ports';

// Failure paths of the MongoDB adapter, through its public methods, with the driver's own error classes
// and results built the way the driver builds them (bulk/common.ts executeCommands and handleWriteError,
// sdam/server.ts for labels, sdam/topology.ts for server selection). No server: the seam is MongoDriver,
// whose collections here fail the way the driver's do. Behaviour that needs a server (transactions, index
// use, real races) is in test/store.contract.ts and test/mongodb.int.spec.ts, run wherever MONGODB_URL is set.

/** bulk/common.ts BulkResult: what a bulk operation accumulates (internal to the driver's typings). */
interface BulkResult {
  ok: number;
  writeErrors: WriteError[];
  writeConcernErrors: WriteConcernError[];
  insertedIds: Document[];
  nInserted: number;
  nUpserted: number;
  nMatched: number;
  nModified: number;
  nRemoved: number;
  upserted: Document[];
}

// The driver exports these classes as types only; they come from its own modules (through jest's registry,
// so that the driver's `instanceof` checks inside MongoBulkWriteError see the same classes).
const bulk = jest.requireActual<{
  BulkWriteResult: new (result: BulkResult, isOrdered: boolean) => BulkWriteResult;
  WriteConcernError: new (error: WriteConcernErrorData) => WriteConcernError;
  WriteError: new (error: BulkWriteOperationError) => WriteError;
}>('mongodb/lib/bulk/common');
const sdam = jest.requireActual<{
  TopologyDescription: new (type: TopologyType, servers?: null, setName?: string) => TopologyDescription;
}>('mongodb/lib/sdam/topology_description');

const bulkResult = (over: Partial<BulkResult> = {}): BulkResult => ({
  ok: 1,
  writeErrors: [],
  writeConcernErrors: [],
  insertedIds: [],
  nInserted: 0,
  nUpserted: 0,
  nMatched: 0,
  nModified: 0,
  nRemoved: 0,
  upserted: [],
  ...over,
});
const unordered = (r: BulkResult): BulkWriteResult => new bulk.BulkWriteResult(r, false);

/** executeCommands when the command failed as a whole: the error is wrapped, its class lost, no write errors. */
const commandFailed = (cause: Error): MongoBulkWriteError => new MongoBulkWriteError(cause, unordered(bulkResult()));

/** A network error as sdam/server.ts decorates it when retryable writes are on. */
const networkError = (labels = [MongoErrorLabel.RetryableWriteError, MongoErrorLabel.ResetPool]): MongoNetworkError => {
  const err = new MongoNetworkError('connection 7 to 10.0.0.5:27017 closed');
  for (const label of labels) err.addErrorLabel(label);
  return err;
};

const serverError = (code: number, codeName: string, errorLabels: string[] = []): MongoServerError =>
  new MongoServerError({ ok: 0, errmsg: codeName, code, codeName, errorLabels });

const selectionError = (): MongoServerSelectionError =>
  new MongoServerSelectionError(
    'Server selection timed out after 5000 ms',
    new sdam.TopologyDescription(TopologyType.ReplicaSetNoPrimary, null, 'rs0'),
  );

const concern = (code: number, errmsg: string): WriteConcernErrorData => ({ code, errmsg });

/** executeCommands on a MongoWriteConcernError: only the write concern error's message and code are kept. */
function writeConcernThrown(code: number, errmsg: string, over: Partial<BulkResult> = {}): MongoBulkWriteError {
  const r = bulkResult(over);
  r.writeConcernErrors.push(new bulk.WriteConcernError(concern(code, errmsg)));
  return new MongoBulkWriteError({ message: errmsg, code }, unordered(r));
}

/** handleWriteError after a reply carrying writeConcernError: the error has no code of its own. */
function writeConcernReported(code: number, errmsg: string, over: Partial<BulkResult> = {}): MongoBulkWriteError {
  const r = bulkResult(over);
  const wce = new bulk.WriteConcernError(concern(code, errmsg));
  r.writeConcernErrors.push(wce);
  return new MongoBulkWriteError(wce, unordered(r));
}

/** handleWriteError with write errors; a write concern error, if any, stays only inside the result. */
function writeErrors(
  failures: Array<{ index: number; code: number }>,
  over: Partial<BulkResult> = {},
  writeConcern?: WriteConcernErrorData,
): MongoBulkWriteError {
  const r = bulkResult(over);
  for (const { index, code } of failures) {
    const errmsg = code === 11000 ? 'E11000 duplicate key error collection: aisle.events index: _id_' : 'failed';
    r.writeErrors.push(new bulk.WriteError({ index, code, errmsg, errInfo: {}, op: {} }));
  }
  if (writeConcern) r.writeConcernErrors.push(new bulk.WriteConcernError(writeConcern));
  const first = r.writeErrors[0] as WriteError;
  return new MongoBulkWriteError(
    { message: first.errmsg ?? '', code: first.code, writeErrors: r.writeErrors },
    unordered(r),
  );
}

type Fake = Partial<Record<'insertMany' | 'bulkWrite' | 'find' | 'findOne' | 'countDocuments', unknown>>;
const REPLICA_SET_HELLO = { isWritablePrimary: true, setName: 'rs0', hosts: ['mongodb-0:27017'], ok: 1 };

/** A client that never connects: its sessions run transactions with nothing sent to a server. */
const offline = new MongoClient('mongodb://127.0.0.1:9/aisle');
afterAll(() => offline.close());

interface FakeDriver extends MongoDriver {
  closed: number;
}

function fakeDriver(
  opts: {
    collections?: Record<string, Fake>;
    hello?: () => Promise<Document>;
    createIndexes?: () => Promise<unknown>;
    createCollection?: () => Promise<unknown>;
    session?: () => ClientSession;
  } = {},
): FakeDriver {
  const driver: FakeDriver = {
    closed: 0,
    command: async (cmd) => ('hello' in cmd ? (opts.hello ?? (async () => REPLICA_SET_HELLO))() : { ok: 1 }),
    collection: <T extends Document>(name: string) =>
      ({
        createIndexes: opts.createIndexes ?? (async () => []),
        ...opts.collections?.[name],
      }) as unknown as Collection<T>,
    createCollection: opts.createCollection ?? (async () => undefined),
    startSession: opts.session ?? (() => offline.startSession()),
    close: async () => {
      driver.closed += 1;
    },
  };
  return driver;
}

const failing = (err: Error) => async () => {
  throw err;
};
/** A find whose cursor fails on read, as a cursor does when the server goes away. */
const failingFind = (err: Error) => () => ({ toArray: failing(err) });

const ev = (id: string) => storedEvent(id, { tenant: 't' });
const item = (id: string, updatedAt = 1) => catalogItem(id, updatedAt, { tenant: 't' });

const storeWith = (collections: Record<string, Fake>, more: Parameters<typeof fakeDriver>[0] = {}) =>
  MongoStore.start(fakeDriver({ collections, ...more }));

describe('mongodb adapter failure paths (driver errors behind the MongoDriver seam)', () => {
  const transient: Array<[string, () => Error]> = [
    ['a network error wrapped in a bulk write error', () => commandFailed(networkError())],
    ['an unlabelled network error wrapped (retryWrites=false)', () => commandFailed(networkError([]))],
    ['a server selection timeout wrapped', () => commandFailed(selectionError())],
    [
      'NotWritablePrimary (10107) wrapped',
      () => commandFailed(serverError(10107, 'NotWritablePrimary', ['RetryableWriteError'])),
    ],
    [
      'InterruptedDueToReplStateChange (11602), unlabelled',
      () => commandFailed(serverError(11602, 'InterruptedDueToReplStateChange')),
    ],
    ['PrimarySteppedDown (189), unlabelled', () => commandFailed(serverError(189, 'PrimarySteppedDown'))],
    ['ShutdownInProgress (91), unlabelled', () => commandFailed(serverError(91, 'ShutdownInProgress'))],
    [
      'a code it does not know, labelled RetryableWriteError',
      () => commandFailed(serverError(999, 'Unknown', ['RetryableWriteError'])),
    ],
    [
      'a write concern timeout thrown by the server',
      () => writeConcernThrown(64, 'waiting for replication timed out', { nInserted: 2 }),
    ],
    [
      'a write concern timeout in the reply',
      () => writeConcernReported(64, 'waiting for replication timed out', { nInserted: 2 }),
    ],
    ['a stepdown reported as the write concern error', () => writeConcernReported(11602, 'operation was interrupted')],
    [
      'duplicates plus a write concern timeout',
      () =>
        writeErrors([{ index: 1, code: 11000 }], { nInserted: 1 }, concern(64, 'waiting for replication timed out')),
    ],
    [
      'write errors from a stepdown mid-batch',
      () =>
        writeErrors([
          { index: 0, code: 11602 },
          { index: 1, code: 11000 },
        ]),
    ],
  ];

  test.each(transient)('insertMany: %s -> StoreUnavailableError, never "inserted"', async (_, make) => {
    const err = make();
    const store = await storeWith({ events: { insertMany: failing(err) } });
    const outcome = store.events.insertMany([ev('a'), ev('b')]);
    await expect(outcome).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(outcome).rejects.toMatchObject({ cause: err });
  });

  test.each(transient)('items.upsertMany: %s -> StoreUnavailableError, never "written"', async (_, make) => {
    const store = await storeWith({ items: { bulkWrite: failing(make()) } });
    await expect(store.items.upsertMany([item('a'), item('b')])).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test.each(transient)('churnScores.upsertMany: %s -> StoreUnavailableError', async (_, make) => {
    const store = await storeWith({ churn_scores: { bulkWrite: failing(make()) } });
    const record = { tenant: 't', userId: 'u', risk: 1, band: 'high' as const, factors: [], scoredAt: 1 };
    await expect(
      store.churnScores.upsertMany([{ ...record, modelVersion: 'v', alerted: false }]),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  const permanent: Array<[string, () => Error]> = [
    [
      'a document that fails validation (121)',
      () =>
        writeErrors([
          { index: 0, code: 121 },
          { index: 1, code: 11000 },
        ]),
    ],
    ['an unknown write concern (79)', () => writeConcernReported(79, "unrecognized write concern mode 'dc2'")],
    ['an unsatisfiable write concern (100), thrown', () => writeConcernThrown(100, 'Not enough data-bearing nodes')],
    [
      'failed authentication (18) during the handshake',
      () => commandFailed(serverError(18, 'AuthenticationFailed', ['HandshakeError'])),
    ],
  ];

  test.each(permanent)('insertMany: %s -> StoreError (not retryable), never "inserted"', async (_, make) => {
    const store = await storeWith({ events: { insertMany: failing(make()) } });
    const outcome = store.events.insertMany([ev('a'), ev('b')]);
    await expect(outcome).rejects.toBeInstanceOf(StoreError);
    await expect(outcome).rejects.not.toBeInstanceOf(StoreUnavailableError);
  });

  test('insertMany: duplicate keys alone are the idempotent outcome, counted as not inserted; other content is a conflict', async () => {
    // Stored: a as sent (a re-send), c with another item (a conflict).
    const stored = [toEventDoc(ev('a')), toEventDoc({ ...ev('c'), itemId: 'elsewhere' })];
    const store = await storeWith({
      events: {
        insertMany: failing(
          writeErrors(
            [
              { index: 0, code: 11000 },
              { index: 2, code: 11000 },
            ],
            { nInserted: 1 },
          ),
        ),
        find: () => ({ toArray: async () => stored }),
      },
    });
    await expect(store.events.insertMany([ev('a'), ev('b'), ev('c')])).resolves.toEqual({
      inserted: 1,
      conflicting: [2],
    });
  });

  test('items.upsertMany: a collision with a concurrent creator is retried and the newer version written', async () => {
    const calls: Array<Array<{ replaceOne: { filter: Document; replacement: Document } }>> = [];
    const bulkWrite = async (ops: (typeof calls)[number]) => {
      calls.push(ops);
      if (calls.length === 1) {
        // 'a' created, 'b' collided with a concurrent creator of 'b', 'c' replaced.
        throw writeErrors([{ index: 1, code: 11000 }], {
          upserted: [{ index: 0, _id: 'a' }],
          nUpserted: 1,
          nMatched: 1,
        });
      }
      return unordered(bulkResult({ nMatched: 1, nModified: 1 }));
    };
    const store = await storeWith({ items: { bulkWrite } });
    await expect(store.items.upsertMany([item('a', 5), item('b', 7), item('c', 9)])).resolves.toEqual({ written: 3 });
    expect(calls).toHaveLength(2);
    expect(calls[1]).toHaveLength(1);
    expect(calls[1]?.[0]?.replaceOne.filter).toEqual({ _id: '["t","b"]', updated_at: { $lte: new Date(7) } });
  });

  test('items.upsertMany: a second collision means the stored version is newer: not written, not retried again', async () => {
    let calls = 0;
    const bulkWrite = async () => {
      calls += 1;
      throw calls === 1
        ? writeErrors(
            [
              { index: 0, code: 11000 },
              { index: 1, code: 11000 },
            ],
            { upserted: [{ index: 2, _id: 'c' }] },
          )
        : writeErrors([{ index: 1, code: 11000 }], { nMatched: 1 });
    };
    const store = await storeWith({ items: { bulkWrite } });
    await expect(store.items.upsertMany([item('a'), item('b'), item('c')])).resolves.toEqual({ written: 2 });
    expect(calls).toBe(2);
  });

  test('scans and reads translate cursor failures: events, items, documents', async () => {
    const find = failingFind(networkError());
    const store = await storeWith({
      events: { find },
      items: { find },
      user_features: { find },
      churn_scores: { find },
    });
    const drain = async (it: AsyncIterable<unknown>) => {
      for await (const _ of it);
    };
    await expect(drain(store.events.scan({ tenant: 't' }))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(drain(store.items.scan('t'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(drain(store.documents.scan('user_features', 't'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.items.getMany('t', ['a'])).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.documents.listIds('user_features', 't', '', 5)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.churnScores.listAtRisk('t', 0, 5)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('a limit below one asks the server nothing (the driver would read 0 as "no limit")', async () => {
    const find = failingFind(new Error('must not be called'));
    const store = await storeWith({ user_features: { find }, churn_scores: { find } });
    await expect(store.documents.listIds('user_features', 't', '', 0)).resolves.toEqual([]);
    await expect(store.churnScores.listAtRisk('t', 0, -1)).resolves.toEqual([]);
  });

  test('ping: an unreachable primary is StoreUnavailableError', async () => {
    const driver = fakeDriver();
    const store = await MongoStore.start(driver);
    driver.command = failing(selectionError());
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('transact: a transient conflict inside is retried by the driver, the outcome is the retry', async () => {
    let attempts = 0;
    const bulkWrite = async () => {
      attempts += 1;
      // A write conflict with another process's transaction, labelled by the server.
      if (attempts === 1) throw serverError(112, 'WriteConflict', ['TransientTransactionError']);
      return unordered(bulkResult({ nMatched: 1 }));
    };
    const store = await storeWith({ user_features: { bulkWrite } });
    const result = await store.documents.transact(async (tx) => {
      await tx.putMany('user_features', 't', new Map([['u', { n: 1 }]]));
      return 'committed';
    });
    expect(result).toBe('committed');
    expect(attempts).toBe(2);
  });

  test('transact: a commit whose outcome is unknown is StoreUnavailableError, never success', async () => {
    // What commitTransaction throws when majority acknowledgement timed out, after its own retry.
    const err = new MongoWriteConcernError({
      ok: 1,
      writeConcernError: { code: 64, codeName: 'WriteConcernTimeout', errmsg: 'waiting for replication timed out' },
    });
    err.addErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult);
    const session = offline.startSession();
    session.withTransaction = failing(err);
    const store = await storeWith({}, { session: () => session });
    await expect(store.documents.transact(async () => 'done')).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  test('transact: transactions of one store are serialized', async () => {
    const store = await storeWith({});
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map((n) =>
        store.documents.transact(async () => {
          inside += 1;
          most = Math.max(most, inside);
          await new Promise((r) => setTimeout(r, 5));
          order.push(n);
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  test('transact: markApplied writes the batch in one bulk write and returns the markers it created', async () => {
    const seen: Document[][] = [];
    const bulkWrite = async (ops: Document[]) => {
      seen.push(ops);
      return unordered(
        bulkResult({
          upserted: [
            { index: 0, _id: 'x' },
            { index: 2, _id: 'z' },
          ],
          nUpserted: 2,
          nMatched: 1,
        }),
      );
    };
    const store = await storeWith({ applied: { bulkWrite } });
    const fresh = await store.documents.transact((tx) => tx.markApplied('feature', 't', ['e1', 'e2', 'e1', 'e3']));
    expect(fresh).toEqual(new Set(['e1', 'e3']));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toHaveLength(3);
  });
});

describe('mongodb adapter startup', () => {
  test('refuses a standalone server, naming why, and closes the client', async () => {
    const driver = fakeDriver({ hello: async () => ({ isWritablePrimary: true, maxWireVersion: 21, ok: 1 }) });
    const opened = MongoStore.start(driver);
    await expect(opened).rejects.toBeInstanceOf(StoreError);
    await expect(opened).rejects.toThrow(/standalone.*replica set.*--replSet rs0.*rs\.initiate\(\)/);
    expect(driver.closed).toBe(1);
  });

  test('refuses a member whose replica set was never initiated, saying to run rs.initiate()', async () => {
    const driver = fakeDriver({
      hello: async () => ({ isreplicaset: true, info: 'Does not have a valid replica set config', ok: 1 }),
    });
    await expect(MongoStore.start(driver)).rejects.toThrow(
      /--replSet but its replica set is not initiated.*rs\.initiate\(\)/,
    );
    expect(driver.closed).toBe(1);
  });

  test('accepts a replica set member and a mongos', async () => {
    await expect(MongoStore.start(fakeDriver())).resolves.toBeInstanceOf(MongoStore);
    const mongos = fakeDriver({ hello: async () => ({ isWritablePrimary: true, msg: 'isdbgrid', ok: 1 }) });
    await expect(MongoStore.start(mongos)).resolves.toBeInstanceOf(MongoStore);
    expect(mongos.closed).toBe(0);
  });

  test('closes the client when index creation fails', async () => {
    const driver = fakeDriver({
      createIndexes: failing(serverError(86, 'IndexKeySpecsConflict')),
    });
    await expect(MongoStore.start(driver)).rejects.toThrow(/IndexKeySpecsConflict/);
    expect(driver.closed).toBe(1);
  });

  test('closes the client when the server cannot be reached at open', async () => {
    const driver = fakeDriver({ hello: failing(selectionError()) });
    await expect(MongoStore.start(driver)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(driver.closed).toBe(1);
  });

  test('collections that exist already are fine (another replica opened first)', async () => {
    const driver = fakeDriver({ createCollection: failing(serverError(48, 'NamespaceExists')) });
    await expect(MongoStore.start(driver)).resolves.toBeInstanceOf(MongoStore);
  });

  test('a URL the driver cannot parse is a StoreError, and the message does not echo the password', async () => {
    const opened = MongoStore.open('mongodb://user:s3cret@host:27017/aisle?replicaSet=rs0&w=banana&tls=maybe');
    await expect(opened).rejects.toBeInstanceOf(StoreError);
    await expect(opened).rejects.not.toBeInstanceOf(StoreUnavailableError);
    await expect(opened).rejects.toThrow(/tls/);
    await expect(opened).rejects.not.toThrow(/s3cret/);
  });

  test('the database is the one in the URL, else aisle (not the driver default, test)', () => {
    expect(databaseName('mongodb://localhost:27017')).toBe('aisle');
    expect(databaseName('mongodb://localhost:27017/')).toBe('aisle');
    expect(databaseName('mongodb://localhost:27017/?replicaSet=rs0')).toBe('aisle');
    expect(databaseName('mongodb://u:p%2F%3F@a:1,b:2,c:3/shop?replicaSet=rs0&w=majority')).toBe('shop');
    expect(databaseName('mongodb+srv://cluster0.example.net/tenant%2Dx?retryWrites=true')).toBe('tenant-x');
  });

  test('client defaults apply only where the URL says nothing (the URL wins)', () => {
    expect(clientOptions('mongodb://h/?replicaSet=rs0')).toEqual({
      serverSelectionTimeoutMS: 5000,
      writeConcern: { w: 'majority' },
      readConcernLevel: 'majority',
    });
    expect(clientOptions('mongodb://h/db?W=1&serverselectiontimeoutms=200&readConcernLevel=local')).toEqual({});
    expect(clientOptions('mongodb://h/db?journal=true')).not.toHaveProperty('writeConcern');
  });
});
