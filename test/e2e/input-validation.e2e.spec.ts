/**
 * Input that must not be accepted, sent the way an outside producer or client sends it: raw bytes over
 * NATS (ids of invalid UTF-8, blank, zero-width, bidi controls, too long; an event id reused with other
 * content) and gRPC requests with out-of-range or garbage fields. Each lands in the dead-letter stream
 * with a field-level reason, or gets INVALID_ARGUMENT naming the field; nothing valid is lost.
 */
import { churnV1, embeddingV1, featureV1, Headers, ingestV1, Streams } from '@aisle/contracts';
import { startLocalStack, type LocalStack } from '@aisle/local-stack';
import { createGrpcClient, isGrpcError } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import { eventually, tempSqliteUrl } from '@aisle/testkit';
import { headers } from '@nats-io/transport-node';
import { connectTestBus, consumerCaughtUp, readStream } from '../support/bus';

jest.setTimeout(120_000);

let stack: LocalStack;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let bus: Awaited<ReturnType<typeof connectTestBus>>;

beforeAll(async () => {
  storeFile = tempSqliteUrl();
  stack = await startLocalStack({ storeUrl: storeFile.url });
  bus = await connectTestBus(stack.nats.url);
});

afterAll(async () => {
  await bus?.nc.close();
  await stack?.stop();
  storeFile?.dispose();
});

const occurredAt = new Date(Date.now() - 60_000).toISOString();
const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];
/** A JSON view event whose user_id is the given raw bytes (not necessarily UTF-8). */
function viewWithUserBytes(eventId: string, userId: number[]): Uint8Array {
  return Uint8Array.from([
    ...utf8(`{"event_id":"${eventId}","type":"view","item_id":"i1","occurred_at":"${occurredAt}","user_id":"`),
    ...userId,
    ...utf8('"}'),
  ]);
}
const json = (o: Record<string, unknown>) =>
  new TextEncoder().encode(JSON.stringify({ type: 'view', item_id: 'i1', occurred_at: occurredAt, ...o }));

async function publish(data: Uint8Array): Promise<void> {
  const h = headers();
  h.set(Headers.contentType, 'application/json');
  await bus.js.publish('aisle.clickstream.v1.view', data, { headers: h });
}

async function codeAndDetails(call: Promise<unknown>): Promise<[string, string]> {
  try {
    await call;
    return ['OK', ''];
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    return [String(err.code), err.details];
  }
}

test('ids that are not valid, printable, short UTF-8 go to the DLQ with the field named; conflicting re-use of an event id too', async () => {
  const store = await openStore(storeFile.url, STORE_PORTS);
  try {
    await publish(json({ event_id: 'ok1', user_id: 'Zoë 用户' }));
    await publish(json({ event_id: 'dup1', user_id: 'u1' }));
    await eventually(async () => (await store.events.count()) === 2, { what: 'valid events stored' });
    const bad: Array<[Uint8Array, string]> = [
      [viewWithUserBytes('b1', [0x75, 0xff]), 'user_id: not valid UTF-8 (or contains U+FFFD)'],
      [viewWithUserBytes('b2', [0x75, 0xfe]), 'user_id: not valid UTF-8 (or contains U+FFFD)'],
      [json({ event_id: 'b3', user_id: ' \u3000 ' }), 'user_id: blank'],
      [
        json({ event_id: 'b4', user_id: '\u200b' }),
        'user_id: contains an unprintable character U+200B (control, zero-width or bidi)',
      ],
      [
        json({ event_id: 'b5', user_id: 'u1', item_id: 'i1\u202egpj.exe' }),
        'item_id: contains an unprintable character U+202E (control, zero-width or bidi)',
      ],
      [json({ event_id: 'b6', user_id: 'é'.repeat(65) }), 'user_id: longer than 128 bytes'],
      // The same id with other content: a producer bug, not a re-send.
      [json({ event_id: 'dup1', user_id: 'u1', item_id: 'i2' }), 'event_id: already stored with different content'],
    ];
    for (const [data] of bad) await publish(data);
    // A true re-send (same content) is dropped silently, as before.
    await publish(json({ event_id: 'dup1', user_id: 'u1' }));
    await publish(json({ event_id: 'ok2', user_id: 'u2' }));

    await eventually(async () => (await bus.jsm.streams.info(Streams.DLQ.name)).state.messages === bad.length, {
      what: 'every bad message dead-lettered',
    });
    await eventually(() => consumerCaughtUp(bus.jsm, Streams.CLICKSTREAM.name, 'ingest-clickstream'), {
      what: 'ingest caught up',
    });
    const reasons = (await readStream(bus.jsm, Streams.DLQ.name)).map((m) => m.header.get(Headers.rejectReason));
    expect(reasons.sort()).toEqual(bad.map(([, r]) => r).sort());
    const stored: Array<[string, string, string]> = [];
    for await (const e of store.events.scan()) stored.push([e.eventId, e.userId, e.itemId]);
    expect(stored.sort()).toEqual([
      ['dup1', 'u1', 'i1'],
      ['ok1', 'Zoë 用户', 'i1'],
      ['ok2', 'u2', 'i1'],
    ]);
    // Downstream saw each stored event once, and never the conflicting version.
    const normalized = await readStream(bus.jsm, Streams.EVENTS.name);
    expect(normalized).toHaveLength(3);
  } finally {
    await store.close();
  }
});

test('gRPC Track rejects the same ids per event, naming the field', async () => {
  const ingest = createGrpcClient(ingestV1.IngestServiceService, `127.0.0.1:${stack.services.ingest.grpcPort}`, {
    deadlineMs: 5000,
  });
  try {
    const event = (eventId: string, userId: string) =>
      ingestV1.TrackRequest.fromPartial({
        events: [{ eventId, userId, type: 'view', itemId: 'i1', occurredAt: new Date(occurredAt) }],
      }).events[0]!;
    const r = await ingest.track({
      events: [event('t1', '\u2066u1\u2069'), event('t2', '  '), event('t3', 'u3')],
    });
    expect(r.accepted).toBe(1);
    expect(r.rejected.map((x) => [x.eventId, x.reason])).toEqual([
      ['t1', 'user_id: contains an unprintable character U+2066 (control, zero-width or bidi)'],
      ['t2', 'user_id: blank'],
    ]);
  } finally {
    ingest.close();
  }
});

test('out-of-range and garbage request fields get INVALID_ARGUMENT naming the field', async () => {
  const at = (name: keyof LocalStack['services']) => `127.0.0.1:${stack.services[name].grpcPort}`;
  const opts = { deadlineMs: 5000 };
  const churn = createGrpcClient(churnV1.ChurnServiceService, at('churn'), opts);
  const feature = createGrpcClient(featureV1.FeatureServiceService, at('feature'), opts);
  const embedding = createGrpcClient(embeddingV1.EmbeddingServiceService, at('embedding'), opts);
  const INVALID_ARGUMENT = '3';
  try {
    expect(await codeAndDetails(churn.listAtRisk({ tenant: '', minRisk: NaN, pageSize: 10, pageToken: '' }))).toEqual([
      INVALID_ARGUMENT,
      'min_risk: must be between 0 and 1',
    ]);
    for (const pageToken of ['garbage!!', 'abc', Buffer.from('u1').toString('base64url')])
      expect(await codeAndDetails(feature.listUsers({ tenant: '', pageSize: 10, pageToken }))).toEqual([
        INVALID_ARGUMENT,
        'page_token: not a token returned by ListUsers',
      ]);
    expect(await codeAndDetails(feature.getUserFeatures({ tenant: '', userIds: ['u1'], recentLimit: 201 }))).toEqual([
      INVALID_ARGUMENT,
      'recent_limit: must be between 0 and 200',
    ]);
    expect(
      await codeAndDetails(
        embedding.retrieve({ tenant: '', sequence: { itemIds: ['i1'] }, k: 0, excludeItemIds: [], index: 0 }),
      ),
    ).toEqual([INVALID_ARGUMENT, 'k: must be between 1 and 1000']);
    // A token ListUsers returned still pages.
    const first = await eventually(
      async () => {
        const page = await feature.listUsers({ tenant: '', pageSize: 1, pageToken: '' });
        return page.nextPageToken ? page : undefined;
      },
      { what: 'feature to know two users' },
    );
    const second = await feature.listUsers({ tenant: '', pageSize: 1, pageToken: first.nextPageToken });
    expect(second.userIds).toHaveLength(1);
    expect(second.userIds[0]! > first.userIds[0]!).toBe(true);
  } finally {
    churn.close();
    feature.close();
    embedding.close();
  }
});
