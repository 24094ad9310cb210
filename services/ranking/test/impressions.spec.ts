import { rankingV1 } from '@aisle/contracts';
import type { ServedEvent } from '@aisle/ranking-core';
import { createMetricsRegistry, memoryLogger } from '@aisle/runtime';
import { ImpressionBuffer, type ImpressionTransport } from '../src/impressions.nats';

/** A transport that stores what it is given while `up`, and a status stream the test drives. */
function fakeTransport() {
  const stored: string[] = [];
  const listeners: Array<(s: { type: string }) => void> = [];
  const t = {
    up: false,
    stored,
    emit: (type: string) => listeners.forEach((l) => l({ type })),
    publish: async (payload: Uint8Array, msgId: string) => {
      if (!t.up) throw new Error('no JetStream ack within 2000 ms');
      expect(rankingV1.Served.decode(payload).requestId).toBe(msgId);
      stored.push(msgId);
    },
    status: () => ({
      async *[Symbol.asyncIterator]() {
        for (;;) yield await new Promise<{ type: string }>((resolve) => listeners.push(resolve));
      },
    }),
    close: () => undefined,
  };
  return t satisfies ImpressionTransport;
}

const served = (requestId: string): ServedEvent => ({
  requestId,
  tenant: 'default',
  userId: 'u1',
  surface: 'recommend',
  query: '',
  items: [{ itemId: 'a', position: 1, score: 1 }],
  modelVersion: 'ranker:heuristic',
  degraded: false,
  servedAt: Date.now(),
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('ImpressionBuffer', () => {
  test('while NATS is away impressions wait (bounded, oldest dropped and counted); they go out when it returns', async () => {
    const transport = fakeTransport();
    const registry = createMetricsRegistry('ranking', { defaultMetrics: false });
    const buffer = new ImpressionBuffer(transport, { maxBuffered: 3, maxInFlight: 1 }, memoryLogger(), registry);
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5']) buffer.served(served(id));
    await until(() => buffer.size === 3);
    expect(buffer.size).toBe(3);
    expect(await registry.getSingleMetricAsString('aisle_ranking_impressions_dropped_total')).toMatch(/ 2$/m);
    expect(await registry.getSingleMetricAsString('aisle_ranking_impressions_buffered')).toMatch(/ 3$/m);
    transport.up = true;
    await until(() => transport.stored.length === 3);
    // Publishing starts after the requests of this tick were answered: the oldest ones (r1, r2) made room
    // for r4 and r5; r3 went in flight first and was kept through the failures.
    expect(transport.stored).toEqual(['r3', 'r4', 'r5']);
    await buffer.close(100);
  });

  test('publishing pauses on disconnect and resumes on reconnect', async () => {
    const transport = fakeTransport();
    transport.up = true;
    const buffer = new ImpressionBuffer(
      transport,
      { maxBuffered: 100, maxInFlight: 8 },
      memoryLogger(),
      createMetricsRegistry('ranking', { defaultMetrics: false }),
    );
    await new Promise((r) => setTimeout(r, 10));
    transport.emit('disconnect');
    await new Promise((r) => setTimeout(r, 10));
    buffer.served(served('a'));
    buffer.served(served('b'));
    await new Promise((r) => setTimeout(r, 50));
    expect(transport.stored).toEqual([]);
    await new Promise((r) => setTimeout(r, 10));
    transport.emit('reconnect');
    await until(() => transport.stored.length === 2);
    expect(transport.stored).toEqual(['a', 'b']);
    await buffer.close(100);
  });
});
