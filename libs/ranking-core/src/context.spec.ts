import { DependencyDeadlineError, StaleFallback } from './context';
import type { CallBudget } from './ports';
import { context, hung } from './testing.fixture';

describe('RequestContext: one deadline per request', () => {
  test('the caller deadline (less a margin) wins over a later own deadline; dependencies stop earlier', () => {
    const now = 1_000_000;
    const ctx = context({ callerDeadline: now + 100 }, { deadlineMs: 300, marginMs: 3, reserveShare: 0.2 }, () => now);
    expect(ctx.deadline).toBe(now + 97);
    // 20 % of the 97 ms budget is kept for features, ranker and the response.
    expect(ctx.dependencyDeadline).toBeCloseTo(now + 97 - 19.4);
    const own = context({}, { deadlineMs: 300, maxReserveMs: 25 }, () => now);
    expect(own.deadline).toBe(now + 300);
    expect(own.dependencyDeadline).toBe(now + 275);
  });

  test('each call gets the time left, at most the dependency timeout, as an absolute deadline', async () => {
    const now = Date.now();
    const ctx = context({}, { deadlineMs: 300, dependencyTimeoutMs: 50 }, () => now);
    let seen: CallBudget | undefined;
    const got = await ctx.call('feature', async (b) => {
      seen = b;
      return 42;
    });
    expect(got).toBe(42);
    expect(seen?.deadline).toBe(now + 50);
    expect(seen?.signal.aborted).toBe(false);
    expect(ctx.degradation.degraded).toBe(false);
    ctx.close();
    // Nothing was left running, so nothing is cancelled.
    expect(seen?.signal.aborted).toBe(false);
  });

  test('answering cancels the calls still running', async () => {
    const ctx = context({}, { deadlineMs: 5000, dependencyTimeoutMs: 5000 });
    const budgets: CallBudget[] = [];
    const pending = ctx.call('feature', hung<number>(budgets));
    ctx.close();
    expect(await pending).toBeUndefined();
    expect(budgets[0]?.signal.aborted).toBe(true);
  });

  test('a dependency that never answers is given up at the dependency deadline, and named', async () => {
    const ctx = context({ callerDeadline: Date.now() + 60 }, { marginMs: 3 });
    const budgets: CallBudget[] = [];
    const started = performance.now();
    const [a, b] = await Promise.all([
      ctx.call('feature', hung<number>(budgets)),
      ctx.call('embedding', hung<number>(budgets)),
    ]);
    const waited = performance.now() - started;
    expect([a, b]).toEqual([undefined, undefined]);
    expect(budgets.every((x) => x.deadline <= ctx.dependencyDeadline)).toBe(true);
    expect(waited).toBeLessThan(1000); // given up, not hung
    expect(budgets.every((x) => x.signal.aborted)).toBe(true);
    expect(ctx.degradation.reasons).toEqual([
      expect.stringMatching(/^feature: no answer by the request's dependency deadline/),
      expect.stringMatching(/^embedding: /),
    ]);
    ctx.close();
  });

  test('no time left: the dependency is not called at all', async () => {
    const ctx = context({ callerDeadline: Date.now() - 1 });
    const fn = jest.fn(async () => 1);
    expect(await ctx.call('feature', fn)).toBeUndefined();
    expect(fn).not.toHaveBeenCalled();
    expect(ctx.degradation.reasons[0]).toMatch(/^feature: no time left/);
  });

  test('a caller that leaves aborts the calls in flight', async () => {
    const caller = new AbortController();
    const ctx = context({ signal: caller.signal }, { deadlineMs: 5000, dependencyTimeoutMs: 5000 });
    const pending = ctx.call('feature', hung<number>());
    caller.abort();
    expect(await pending).toBeUndefined();
    expect(ctx.degradation.reasons[0]).toMatch(/^feature:/);
    ctx.close();
  });

  test('failures degrade once per dependency; a stale fallback is used and still flagged', async () => {
    const ctx = context();
    await ctx.call('feature', async () => {
      throw new Error('14 UNAVAILABLE: connection refused\nstack');
    });
    const stale = await ctx.call('feature', async () => {
      throw new StaleFallback('old value', new Error('again'));
    });
    expect(stale).toBe('old value');
    expect(ctx.degradation.reasons).toEqual(['feature: 14 UNAVAILABLE: connection refused']);
    ctx.degrade('ranker', new DependencyDeadlineError('late'));
    expect(ctx.degradation.reasons).toHaveLength(2);
    ctx.close();
  });
});
