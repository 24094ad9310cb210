import { BatchShedError, DynamicBatcher } from './batcher';

test('collects concurrent requests into batches of at most maxBatch, in order', async () => {
  const sizes: number[] = [];
  const b = new DynamicBatcher<number, number>(
    async (xs) => {
      sizes.push(xs.length);
      await new Promise((r) => setTimeout(r, 5));
      return xs.map((x) => x * 2);
    },
    { maxBatch: 4, maxDelayMs: 20, budgetMs: 1000 },
  );
  const out = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(i)));
  expect(out).toEqual(Array.from({ length: 10 }, (_, i) => i * 2));
  expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
  expect(sizes.reduce((a, s) => a + s, 0)).toBe(10);
  expect(b.stats.batches).toBe(sizes.length);
});

test('a lone caller is never delayed; concurrent callers wait at most maxDelayMs to fill a batch', async () => {
  const b = new DynamicBatcher<number, number>(async (xs) => xs, { maxBatch: 16, maxDelayMs: 50, budgetMs: 1000 });
  let t = performance.now();
  for (let i = 0; i < 5; i++) await b.submit(i);
  expect(performance.now() - t).toBeLessThan(40);
  await Promise.all([b.submit(1), b.submit(2), b.submit(3)]);
  t = performance.now();
  await b.submit(4);
  const waited = performance.now() - t;
  expect(waited).toBeGreaterThanOrEqual(40);
  expect(waited).toBeLessThan(300);
});

test('requests older than the budget are shed; errors reach every request of the batch', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let calls = 0;
  const b = new DynamicBatcher<number, number>(
    async (xs) => {
      calls++;
      if (calls === 1) await gate;
      if (xs.includes(99)) throw new Error('model failed');
      return xs;
    },
    { maxBatch: 1, maxDelayMs: 0, budgetMs: 30 },
  );
  const first = b.submit(1);
  const late = b.submit(2);
  await new Promise((r) => setTimeout(r, 60));
  release();
  await expect(first).resolves.toBe(1);
  await expect(late).rejects.toBeInstanceOf(BatchShedError);
  expect(b.stats.shed).toBe(1);
  await expect(b.submit(99)).rejects.toThrow('model failed');
  await b.close();
  await expect(b.submit(3)).rejects.toThrow('batcher closed');
});
