import { Streams, type StreamSpec } from '@aisle/contracts';
import { startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import {
  AsyncJetStreamPublisher,
  ensureStreams,
  headerValue,
  isTransientError,
  jetStreamOf,
  memoryLogger,
  startConsumerLoop,
  type JsMsg,
  type Outcome,
} from '../src';

let nats: NatsServerHandle;
let nc: NatsConnection;
beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc.close();
  await nats.dispose();
});

const spec: StreamSpec = {
  name: 'TEST',
  subjects: ['test.>'],
  maxAgeMs: 60_000,
  duplicateWindowMs: 60_000,
  description: 'test',
};

test('ensureStreams is idempotent and applies changed settings', async () => {
  const { jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [spec, Streams.DLQ]);
  await ensureStreams(jsm, [{ ...spec, subjects: ['test.>', 'other.>'] }, Streams.DLQ]);
  await Promise.all([ensureStreams(jsm, [Streams.EVENTS]), ensureStreams(jsm, [Streams.EVENTS])]);
  const info = await jsm.streams.info('TEST');
  expect(info.config.subjects).toEqual(['test.>', 'other.>']);
  expect(info.config.duplicate_window).toBe(60_000 * 1_000_000);
});

test('the consumer loop batches in order, redelivers on failure, terminates poison, and drains on stop', async () => {
  const { js, jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [{ ...spec, name: 'LOOP', subjects: ['loop.>'] }, Streams.DLQ]);
  for (let i = 0; i < 300; i++) {
    const h = headers();
    h.set('n', String(i));
    await js.publish('loop.x', new TextEncoder().encode(String(i)), { headers: h });
  }
  const seen: number[] = [];
  const batchSizes: number[] = [];
  let failedOnce = false;
  const handleBatch = async (msgs: readonly JsMsg[]): Promise<Outcome[]> => {
    batchSizes.push(msgs.length);
    if (!failedOnce && msgs.some((m) => m.string() === '100')) {
      failedOnce = true;
      throw Object.assign(new Error('store down'), { name: 'StoreUnavailableError' });
    }
    await new Promise((r) => setTimeout(r, 5));
    return msgs.map((m) => {
      const n = Number(m.string());
      if (n === 250) return { kind: 'term', reason: 'poison' };
      seen.push(n);
      return { kind: 'ack' };
    });
  };
  const logger = memoryLogger();
  const publisher = new AsyncJetStreamPublisher(nc);
  const loop = await startConsumerLoop({
    js,
    jsm,
    deadLetter: { publisher, subject: 'aisle.dlq.v1.events', by: 'test' },
    stream: 'LOOP',
    durable: 'loop',
    filterSubject: 'loop.>',
    batchSize: 50,
    maxInFlight: 120,
    handleBatch,
    logger,
  });
  const deadline = Date.now() + 20_000;
  while (seen.length < 299 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await loop.stop();
  publisher.close();
  await nc.flush(); // acks are fire-and-forget until flushed
  expect(new Set(seen).size).toBe(299);
  expect(seen).not.toContain(250);
  expect(Math.max(...batchSizes)).toBeLessThanOrEqual(50);
  expect(logger.lines.some((l) => l['msg'] === 'batch failed; redelivering with backoff')).toBe(true);
  const info = await jsm.consumers.info('LOOP', 'loop');
  expect(info.num_ack_pending).toBe(0);
  expect(info.num_pending).toBe(0);
  // Outside the redelivered batch, order is stream order.
  const firstPass = seen.slice(0, 100);
  expect(firstPass).toEqual([...firstPass].sort((a, b) => a - b));
});

test('a message that fails on its own is isolated from its batch and dead-lettered after maxDeliveries', async () => {
  const { js, jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [{ ...spec, name: 'POISON', subjects: ['poison.>'] }, Streams.DLQ]);
  await jsm.streams.purge(Streams.DLQ.name);
  const total = 60;
  for (let i = 0; i < total; i++) {
    const h = headers();
    h.set('Content-Type', 'text/plain');
    await js.publish('poison.x', new TextEncoder().encode(String(i)), { headers: h });
  }
  const done = new Set<number>();
  let poisonTries = 0;
  const handleBatch = async (msgs: readonly JsMsg[]): Promise<Outcome[]> => {
    // Message 7 breaks any batch it is in (as a decode inside the batch handler would); 13 asks to be
    // dead-lettered with a reason that quotes producer input.
    if (msgs.some((m) => m.string() === '7')) {
      poisonTries++;
      throw new TypeError('cannot read properties of undefined\r\nX-Injected: 1');
    }
    return msgs.map((m) => {
      const n = Number(m.string());
      if (n === 13) return { kind: 'term', reason: 'field {"\n":1}: unknown field' };
      done.add(n);
      return { kind: 'ack' };
    });
  };
  const logger = memoryLogger();
  const publisher = new AsyncJetStreamPublisher(nc);
  const loop = await startConsumerLoop({
    js,
    jsm,
    stream: 'POISON',
    durable: 'poison',
    filterSubject: 'poison.>',
    batchSize: 20,
    maxInFlight: 40,
    maxDeliveries: 3,
    deadLetter: { publisher, subject: 'aisle.dlq.v1.events', by: 'test' },
    handleBatch,
    logger,
  });
  try {
    const deadline = Date.now() + 20_000;
    const dlqCount = async () => (await jsm.streams.info(Streams.DLQ.name)).state.messages;
    while ((done.size < total - 2 || (await dlqCount()) < 2) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(done.size).toBe(total - 2);
    expect(await dlqCount()).toBe(2);
    const reasons = new Map<string, string>();
    for (const seq of [1, 2]) {
      const d = await jsm.streams.getMessage(Streams.DLQ.name, {
        seq: (await jsm.streams.info(Streams.DLQ.name)).state.first_seq + seq - 1,
      });
      reasons.set(new TextDecoder().decode(d!.data), d!.header.get('Aisle-Reject-Reason'));
      expect(d!.header.get('Aisle-Rejected-By')).toBe('test');
      expect(d!.header.get('Aisle-Original-Subject')).toBe('poison.x');
      expect(d!.header.get('Content-Type')).toBe('text/plain');
    }
    expect(reasons.get('13')).toBe('field {"\\n":1}: unknown field');
    expect(reasons.get('7')).toBe(
      'poison: TypeError: cannot read properties of undefined\\r\\nX-Injected: 1 (gave up after 3 deliveries)',
    );
    // Tried in its first batch, then alone on each of its three deliveries (a redelivery may share a batch).
    expect(poisonTries).toBeGreaterThanOrEqual(4);
    expect(poisonTries).toBeLessThanOrEqual(7);
    const info = await jsm.consumers.info('POISON', 'poison');
    expect(info.config.max_deliver).toBe(200);
  } finally {
    await loop.stop();
    publisher.close();
  }
  await nc.flush();
  const info = await jsm.consumers.info('POISON', 'poison');
  expect(info.num_ack_pending).toBe(0);
});

test('dependency failures are transient; header values are made safe', () => {
  expect(isTransientError(Object.assign(new Error('x'), { name: 'StoreUnavailableError' }))).toBe(true);
  expect(
    isTransientError(new Error('wrapped', { cause: Object.assign(new Error('x'), { name: 'TimeoutError' }) })),
  ).toBe(true);
  expect(isTransientError(Object.assign(new Error('no ack'), { name: 'JetStreamPublishError', code: 408 }))).toBe(true);
  expect(isTransientError(Object.assign(new Error('too big'), { name: 'JetStreamPublishError', code: 10054 }))).toBe(
    false,
  );
  expect(isTransientError(new TypeError('bad'))).toBe(false);
  expect(headerValue('a\r\nb\u0000c\td')).toBe('a\\r\\nb\\u0000c\\td');
  expect(headerValue('x'.repeat(2000))).toHaveLength(1024);
});
