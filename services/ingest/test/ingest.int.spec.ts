/** The ingest process over gRPC: Track/UpsertItems, health, reflection, metrics, config errors, shutdown. */
import { ingestV1 } from '@aisle/contracts';
import { createGrpcClient, grpc, isGrpcError } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import {
  eventually,
  healthCheck,
  listServicesByReflection,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';

jest.setTimeout(60_000);

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let ingest: ServiceProcess;
let client: ReturnType<typeof createGrpcClient<typeof ingestV1.IngestServiceService>>;

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  ingest = await startServiceProcess('ingest', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_TENANTS: 'default,shop2',
  });
  client = createGrpcClient(ingestV1.IngestServiceService, `127.0.0.1:${ingest.grpcPort}`, { deadlineMs: 5000 });
});

afterAll(async () => {
  client?.close();
  await ingest?.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

const at = new Date(Date.UTC(2026, 10, 27, 10));

test('Track stores valid events and answers per-event rejections with field-level reasons', async () => {
  const res = await client.track({
    events: [
      {
        eventId: 'g1',
        tenant: '',
        type: 'view',
        userId: 'u1',
        sessionId: 's',
        itemId: 'i1',
        query: '',
        quantity: 0,
        price: 0,
        currency: '',
        occurredAt: at,
        requestId: '',
        position: 0,
        context: {},
        ingestedAt: undefined,
      },
      {
        eventId: 'g2',
        tenant: '',
        type: 'view',
        userId: '',
        sessionId: '',
        itemId: 'i1',
        query: '',
        quantity: 0,
        price: 0,
        currency: '',
        occurredAt: at,
        requestId: '',
        position: 0,
        context: {},
        ingestedAt: undefined,
      },
      {
        eventId: 'g3',
        tenant: '',
        type: 'search',
        userId: 'u1',
        sessionId: '',
        itemId: '',
        query: '  red   shoes ',
        quantity: 0,
        price: 0,
        currency: '',
        occurredAt: at,
        requestId: '',
        position: 0,
        context: {},
        ingestedAt: undefined,
      },
      {
        eventId: 'g4',
        tenant: '',
        type: 'purchase',
        userId: 'u1',
        sessionId: '',
        itemId: 'i1',
        query: '',
        quantity: 2,
        price: Number.POSITIVE_INFINITY,
        currency: '',
        occurredAt: at,
        requestId: '',
        position: 0,
        context: {},
        ingestedAt: undefined,
      },
      {
        eventId: 'g5',
        tenant: '',
        type: 'view',
        userId: 'u1',
        sessionId: '',
        itemId: 'i1',
        query: '',
        quantity: 0,
        price: 0,
        currency: '',
        occurredAt: new Date(Date.now() + 2 * 86_400_000),
        requestId: '',
        position: 0,
        context: {},
        ingestedAt: undefined,
      },
    ],
  });
  expect(res.accepted).toBe(2);
  expect(res.rejected).toEqual([
    { index: 1, eventId: 'g2', reason: 'user_id: required' },
    { index: 3, eventId: 'g4', reason: 'price: must be a finite number' },
    { index: 4, eventId: 'g5', reason: 'occurred_at: more than 24h in the future' },
  ]);
  const store = await openStore(storeFile.url, STORE_PORTS);
  try {
    await eventually(async () => (await store.events.count()) === 2, { what: 'events stored' });
    const stored = [];
    for await (const e of store.events.scan()) stored.push(e);
    expect(stored.find((e) => e.eventId === 'g3')).toMatchObject({
      tenant: 'default',
      type: 'search',
      query: 'red shoes',
      occurredAt: at.getTime(),
    });
  } finally {
    await store.close();
  }
});

test('UpsertItems validates items; an older version never replaces a newer one', async () => {
  const item = (title: string, updatedAt: Date) => ({
    itemId: 'sku-1',
    tenant: 'shop2',
    title,
    description: '',
    category: ' Home >Candles ',
    brand: 'b',
    price: 12,
    inStock: false,
    attributes: {},
    updatedAt,
    ingestedAt: undefined,
  });
  expect(await client.upsertItems({ items: [item('New', new Date(Date.UTC(2026, 10, 2)))] })).toEqual({
    accepted: 1,
    rejected: [],
  });
  expect(
    await client.upsertItems({
      items: [item('Old', new Date(Date.UTC(2026, 10, 1))), { ...item('', at), itemId: 'sku-2' }],
    }),
  ).toEqual({
    accepted: 1,
    rejected: [{ index: 1, eventId: 'sku-2', reason: 'title: required' }],
  });
  const store = await openStore(storeFile.url, STORE_PORTS);
  try {
    const got = await eventually(async () => (await store.items.getMany('shop2', ['sku-1'])).get('sku-1'), {
      what: 'item stored',
    });
    await new Promise((r) => setTimeout(r, 300));
    expect((await store.items.getMany('shop2', ['sku-1'])).get('sku-1')).toMatchObject({
      title: 'New',
      category: 'Home > Candles',
      inStock: false,
    });
    expect(got.title).toBe('New');
  } finally {
    await store.close();
  }
});

test('oversize batches get INVALID_ARGUMENT naming the field', async () => {
  const events = Array.from({ length: 1001 }, (_, i) => ({
    eventId: `x${i}`,
    tenant: '',
    type: 'view',
    userId: 'u',
    sessionId: '',
    itemId: 'i',
    query: '',
    quantity: 0,
    price: 0,
    currency: '',
    occurredAt: at,
    requestId: '',
    position: 0,
    context: {},
    ingestedAt: undefined,
  }));
  const err: unknown = await client.track({ events }).catch((e: unknown) => e);
  expect(isGrpcError(err) && err.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect((err as Error).message).toContain('events: more than 1000 in one call');
});

test('health is SERVING once ready, reflection lists the API, metrics are exposed', async () => {
  const address = `127.0.0.1:${ingest.grpcPort}`;
  expect(await healthCheck(address)).toBe('SERVING');
  expect(await healthCheck(address, 'aisle.ingest.v1.IngestService')).toBe('SERVING');
  expect(await listServicesByReflection(address)).toEqual(['aisle.ingest.v1.IngestService', 'grpc.health.v1.Health']);
  const body = await (await fetch(`http://127.0.0.1:${ingest.metricsPort}/metrics`)).text();
  expect(body).toMatch(/aisle_ingest_accepted_total\{[^}]*source="clickstream"[^}]*\} [1-9]/);
  expect(body).toMatch(/aisle_grpc_server_handling_seconds_count\{[^}]*method="Track",code="OK"[^}]*\} 1/);
});

test('invalid configuration fails fast, naming every bad variable', async () => {
  const err: unknown = await startServiceProcess('ingest', {
    AISLE_NATS_URL: nats.url,
    AISLE_GRPC_PORT: 'abc',
    AISLE_LOG_LEVEL: 'loud',
    AISLE_INGEST_BATCH_SIZE: '0',
  }).catch((e: unknown) => e);
  const message = (err as Error).message;
  expect(message).toContain('exited with 2');
  expect(message).toContain("AISLE_GRPC_PORT must be an integer, got 'abc'");
  expect(message).toContain("AISLE_LOG_LEVEL must be one of debug, info, warn, error, got 'loud'");
  expect(message).toContain('AISLE_INGEST_BATCH_SIZE must be >= 1, got 0');
});

test('SIGTERM shuts down gracefully in order', async () => {
  const p = await startServiceProcess('ingest', { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url });
  expect(await p.stop()).toBe(0);
  const msgs = p.logs.map((l) => l['msg']);
  expect(msgs).toContain('shutting down');
  expect(msgs[msgs.length - 1]).toBe('shutdown complete');
  expect(p.logs.filter((l) => l['msg'] === 'shutdown step failed')).toEqual([]);
});
