import { Streams, type StreamSpec } from '@aisle/contracts';
import { startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { ensureStreams, jetStreamOf, memoryLogger, startConsumerLoop, type JsMsg, type Outcome } from '../src';

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
  await ensureStreams(jsm, [{ ...spec, name: 'LOOP', subjects: ['loop.>'] }]);
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
      throw new Error('store down');
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
  const loop = await startConsumerLoop({
    js,
    jsm,
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
