import { Admission, CancelledBeforeStartError, ExpiredBeforeStartError, OverloadedError } from './admission';

describe('Admission', () => {
  test('runs up to maxConcurrent, queues up to maxQueue in order, refuses beyond with a retry hint', async () => {
    const a = new Admission({ maxConcurrent: 2, maxQueue: 2 });
    const r1 = await a.acquire(undefined);
    const r2 = await a.acquire(undefined);
    const started: number[] = [];
    const q3 = a.acquire(undefined).then((r) => (started.push(3), r));
    const q4 = a.acquire(undefined).then((r) => (started.push(4), r));
    expect([a.inFlight, a.waiting]).toEqual([2, 2]);
    const refused = await a.acquire(undefined).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OverloadedError);
    expect((refused as OverloadedError).retryAfterMs).toBeGreaterThanOrEqual(5);
    r1();
    r1(); // releasing twice frees one slot only
    const r3 = await q3;
    expect([started, a.inFlight, a.waiting]).toEqual([[3], 2, 1]);
    r2();
    r3();
    (await q4)();
    expect([started, a.inFlight, a.waiting]).toEqual([[3, 4], 0, 0]);
  });

  test('a call whose deadline has passed is never started: on arrival, while waiting, or at its turn', async () => {
    let now = 1000;
    const a = new Admission({ maxConcurrent: 1, maxQueue: 5 }, () => now);
    await expect(a.acquire(999)).rejects.toBeInstanceOf(ExpiredBeforeStartError);
    const r1 = await a.acquire(undefined);
    const waiting = a.acquire(now + 20);
    // Timer-driven expiry while it waits (real time; the clock only matters for arrival and dequeue).
    await expect(waiting).rejects.toThrow('deadline passed while the call waited to start');
    expect(a.waiting).toBe(0);
    // Expired exactly at its turn (its timer has not fired yet): skipped, the next one starts.
    const stale = a.acquire(now + 10_000);
    const fresh = a.acquire(now + 60_000);
    now += 20_000;
    r1();
    await expect(stale).rejects.toBeInstanceOf(ExpiredBeforeStartError);
    const r = await fresh;
    expect(a.inFlight).toBe(1);
    r();
  });

  test('a caller that leaves while waiting gives its place up', async () => {
    const a = new Admission({ maxConcurrent: 1, maxQueue: 5 });
    const r1 = await a.acquire(undefined);
    const c = new AbortController();
    const waiting = a.acquire(undefined, () => c.signal);
    c.abort();
    await expect(waiting).rejects.toBeInstanceOf(CancelledBeforeStartError);
    expect(a.waiting).toBe(0);
    r1();
    expect(a.inFlight).toBe(0);
  });

  test('a call that could only start after its deadline is refused at once, not queued', async () => {
    let now = 0;
    const a = new Admission({ maxConcurrent: 1, maxQueue: 10 }, () => now);
    // Calls hold the slot 100 ms: the mean service time learns it.
    for (let i = 0; i < 40; i++) {
      const r = await a.acquire(undefined);
      now += 100;
      r();
    }
    const r1 = await a.acquire(undefined);
    const patient = a.acquire(now + 1000);
    expect(a.waiting).toBe(1);
    // Two ahead (one running, one waiting) at ~100 ms each: 50 ms left is not enough.
    await expect(a.acquire(now + 50)).rejects.toBeInstanceOf(OverloadedError);
    expect(a.waiting).toBe(1);
    r1();
    (await patient)();
  });
});
