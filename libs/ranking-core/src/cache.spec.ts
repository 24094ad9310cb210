import { CachedCoVisitation, CachedSequenceRetrieval, CachedUserContext, TtlCache, userContextWeight } from './cache';
import { StaleFallback } from './context';
import type { CallBudget, CoVisitationPort, UserContext, UserContextPort } from './ports';
import { profile } from './testing.fixture';

const budget: CallBudget = { deadline: Date.now() + 1000, signal: new AbortController().signal };

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('TtlCache', () => {
  test('serves values for their TTL, keeps them as stale fallbacks, and holds at most maxEntries', () => {
    let now = 0;
    const c = new TtlCache<number>({ maxEntries: 2, ttlMs: 100, clock: () => now });
    c.put('a', 1, c.generation());
    c.put('b', 2, c.generation());
    expect(c.fresh('a')).toBe(1); // a is now the most recently used
    c.put('c', 3, c.generation());
    expect([c.fresh('a'), c.fresh('b'), c.fresh('c')]).toEqual([1, undefined, 3]);
    expect(c.size).toBe(2);
    now = 150;
    expect(c.fresh('a')).toBeUndefined();
    expect(c.stale('a')).toBe(1);
  });

  test('with a TTL jitter, values stored together expire spread over the last share of the TTL', () => {
    let now = 0;
    let r = 0;
    const draws = [0, 0.5, 1];
    const c = new TtlCache<number>({
      maxEntries: 10,
      ttlMs: 100,
      ttlJitter: 0.2,
      clock: () => now,
      random: () => draws[r++ % draws.length] as number,
    });
    for (const k of ['a', 'b', 'c']) c.put(k, 1, c.generation());
    const freshAt = (t: number) => {
      now = t;
      return ['a', 'b', 'c'].filter((k) => c.fresh(k) !== undefined);
    };
    expect(freshAt(79)).toEqual(['a', 'b', 'c']);
    expect(freshAt(80)).toEqual(['a', 'b']);
    expect(freshAt(90)).toEqual(['a']);
    expect(freshAt(100)).toEqual([]);
  });

  test('an answer to a call that started before an invalidation (or a clear) is not stored', () => {
    const c = new TtlCache<string>({ maxEntries: 10, ttlMs: 1000 });
    const before = c.generation();
    c.invalidate('u1');
    c.put('u1', 'old', before);
    expect(c.fresh('u1')).toBeUndefined();
    c.put('u1', 'new', c.generation());
    expect(c.fresh('u1')).toBe('new');
    const beforeClear = c.generation();
    c.clear();
    c.put('u2', 'old', beforeClear);
    expect(c.stale('u2')).toBeUndefined();
  });

  test('with a weight bound, the least recently used go until the total fits; an oversized value is not kept', () => {
    const c = new TtlCache<number[]>({
      maxEntries: 100,
      ttlMs: 1000,
      maxWeight: 10,
      weigh: (v) => (v as number[]).length,
    });
    c.put('a', [1, 2, 3, 4], c.generation());
    c.put('b', [1, 2, 3, 4], c.generation());
    expect(c.totalWeight).toBe(8);
    c.put('c', [1, 2, 3], c.generation());
    expect([c.stale('a'), c.totalWeight]).toEqual([undefined, 7]);
    c.put(
      'd',
      Array.from({ length: 11 }, (_, i) => i),
      c.generation(),
    );
    expect(c.stale('d')).toBeUndefined();
    c.invalidate('b');
    expect(c.totalWeight).toBe(3);
  });

  test('a cached user weighs what it holds (interactions, affinities, queries, co-visits)', () => {
    const ctx = {
      user: profile('u', ['a', 'b', 'c'], { affinity: [{ category: 'x', score: 1 }], queries: ['q'] }),
      coVisits: new Map([
        [
          'c',
          [
            { itemId: 'd', score: 1 },
            { itemId: 'e', score: 1 },
          ],
        ],
      ]),
    };
    expect(userContextWeight(ctx)).toBe(1 + 3 + 1 + 1 + 2);
    expect(userContextWeight({ user: undefined, coVisits: new Map() })).toBe(1);
  });

  test('maxEntries 0 turns the cache off', () => {
    const c = new TtlCache<number>({ maxEntries: 0, ttlMs: 1000 });
    c.put('a', 1, c.generation());
    c.invalidate('a');
    expect(c.size).toBe(0);
  });
});

describe('caching ports', () => {
  test('user contexts are reused until invalidated; a user updated mid-call is fetched again', async () => {
    const calls: Array<ReturnType<typeof deferred<UserContext>>> = [];
    const port: UserContextPort = {
      dependency: 'feature',
      userContext: () => {
        const d = deferred<UserContext>();
        calls.push(d);
        return d.promise;
      },
    };
    const cached = new CachedUserContext(port, { maxEntries: 10, ttlMs: 60_000 });
    expect(cached.dependency).toBe('feature');
    const opts = { coVisitItems: 5, coVisitLimit: 30 };
    const first = cached.userContext('u1', opts, budget);
    calls[0]?.resolve({ user: profile('u1', ['a']), coVisits: new Map() });
    await first;
    expect((await cached.userContext('u1', opts, budget)).user?.recent).toHaveLength(1);
    expect(cached.peek('u1')?.user?.userId).toBe('u1');
    expect(calls).toHaveLength(1);
    // An event arrives while a fetch is in flight: that answer may predate it, so it is not kept.
    cached.invalidate('u1');
    const second = cached.userContext('u1', opts, budget);
    cached.invalidate('u1');
    calls[1]?.resolve({ user: profile('u1', ['a']), coVisits: new Map() });
    await second;
    const third = cached.userContext('u1', opts, budget);
    expect(calls).toHaveLength(3);
    calls[2]?.resolve({ user: profile('u1', ['a', 'b']), coVisits: new Map() });
    expect((await third).user?.recent).toHaveLength(2);
  });

  test('when the dependency fails, an expired value comes back as a stale fallback', async () => {
    let now = 0;
    let fail = false;
    const port: UserContextPort = {
      userContext: async (id) => {
        if (fail) throw new Error('14 UNAVAILABLE');
        return { user: profile(id, ['a']), coVisits: new Map() };
      },
    };
    const cached = new CachedUserContext(port, { maxEntries: 10, ttlMs: 100, clock: () => now });
    const opts = { coVisitItems: 5, coVisitLimit: 30 };
    await cached.userContext('u1', opts, budget);
    now = 500;
    fail = true;
    const err = await cached.userContext('u1', opts, budget).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleFallback);
    expect((err as StaleFallback<UserContext>).value.user?.userId).toBe('u1');
    await expect(cached.userContext('u2', opts, budget)).rejects.toThrow('14 UNAVAILABLE');
  });

  test('co-visits are fetched only for the items the cache lacks; empty lists are remembered', async () => {
    const asked: string[][] = [];
    const port: CoVisitationPort = {
      coVisited: async (ids, limit) => {
        asked.push([...ids]);
        return new Map(ids.filter((id) => id !== 'none').map((id) => [id, [{ itemId: `${id}-n`, score: limit }]]));
      },
    };
    const cached = new CachedCoVisitation(port, { maxEntries: 100, ttlMs: 60_000 });
    const a = await cached.coVisited(['a', 'none'], 30, budget);
    expect([...a.keys()]).toEqual(['a']);
    const b = await cached.coVisited(['a', 'b', 'none'], 30, budget);
    expect([...b.keys()]).toEqual(['a', 'b']);
    expect(asked).toEqual([['a', 'none'], ['b']]);
    // In memory without a call only when every item is.
    expect([...(cached.peek(['a', 'none'], 30)?.keys() ?? [])]).toEqual(['a']);
    expect(cached.peek(['a', 'c'], 30)).toBeUndefined();
    // A different limit is a different list.
    await cached.coVisited(['a'], 50, budget);
    expect(asked).toHaveLength(3);
  });

  test('with a reloader, expired co-visit lists answer from memory while one background call loads them again', async () => {
    let now = 0;
    let round = 1;
    const asked: string[][] = [];
    const port: CoVisitationPort = {
      coVisited: async (ids) => {
        asked.push([...ids]);
        return new Map(ids.map((id) => [id, [{ itemId: `${id}-n${round}`, score: 1 }]]));
      },
    };
    const cached = new CachedCoVisitation(port, { maxEntries: 100, ttlMs: 1000, clock: () => now });
    const reloads: Array<{ key: string; reload: (b: typeof budget) => Promise<void> }> = [];
    await cached.coVisited(['a', 'b'], 30, budget);
    now = 500;
    // Fresh: no reload.
    expect(cached.peek(['a', 'b'], 30)?.get('a')?.[0]?.itemId).toBe('a-n1');
    // Expired without a reloader: a miss (the request fetches).
    now = 1500;
    expect(cached.peek(['a', 'b'], 30)).toBeUndefined();
    cached.reloader = (key, reload) => reloads.push({ key, reload });
    round = 2;
    // Expired with one: the old lists answer, and only the expired items are loaded again.
    await cached.coVisited(['c'], 30, budget);
    const old = cached.peek(['a', 'b', 'c'], 30);
    expect(old?.get('a')?.[0]?.itemId).toBe('a-n1');
    expect(old?.get('c')?.[0]?.itemId).toBe('c-n2');
    expect(reloads).toHaveLength(1);
    expect(asked).toHaveLength(2);
    await reloads[0]?.reload(budget);
    expect(asked[2]).toEqual(['a', 'b']);
    expect(cached.peek(['a', 'b'], 30)?.get('a')?.[0]?.itemId).toBe('a-n2');
    expect(reloads).toHaveLength(1);
    // An item never held is still a miss.
    expect(cached.peek(['a', 'z'], 30)).toBeUndefined();
  });

  test('an expired co-visit list is handed to the reloader once, however many requests find it before it lands', async () => {
    let now = 0;
    const asked: string[][] = [];
    const port: CoVisitationPort = {
      coVisited: async (ids) => {
        asked.push([...ids]);
        return new Map(ids.map((id) => [id, [{ itemId: `${id}-n`, score: 1 }]]));
      },
    };
    const cached = new CachedCoVisitation(port, { maxEntries: 100, ttlMs: 1000, clock: () => now });
    await cached.coVisited(['a', 'b', 'c'], 30, budget);
    const reloads: Array<{ key: string; reload: (b: typeof budget) => Promise<void> }> = [];
    cached.reloader = (key, reload) => reloads.push({ key, reload });
    now = 1500;
    // Requests naming different sets of the same expired items: each item goes to the reloader once.
    expect(cached.peek(['a', 'b'], 30)?.size).toBe(2);
    expect(cached.peek(['b', 'c'], 30)?.size).toBe(2);
    expect(cached.peek(['a', 'b', 'c'], 30)?.size).toBe(2 + 1);
    expect(reloads.map((r) => r.key.split('\u001d')[2]?.split('\u001f'))).toEqual([['a', 'b'], ['c']]);
    // One reload lands: its items are fresh; the other was dropped by the reloader (never run), so once its
    // guard has passed a request asks for it again.
    now = 1900;
    await reloads[0]?.reload(budget);
    expect(asked.at(-1)).toEqual(['a', 'b']);
    now = 1500 + 999;
    cached.peek(['a', 'b', 'c'], 30);
    expect(reloads).toHaveLength(2);
    now = 1500 + 1000;
    cached.peek(['a', 'b', 'c'], 30);
    expect(reloads.map((r) => r.key.split('\u001d')[2])).toEqual(['a\u001fb', 'c', 'c']);
    // A reload that fails keeps its guard (requests do not all ask again while feature is down) until it
    // passes; then a request asks again.
    port.coVisited = async () => {
      throw new Error('14 UNAVAILABLE');
    };
    await expect(reloads[2]?.reload(budget)).rejects.toThrow('UNAVAILABLE');
    cached.peek(['c'], 30);
    expect(reloads).toHaveLength(3);
    now = 2500 + 1000;
    cached.peek(['c'], 30);
    expect(reloads).toHaveLength(4);
    // A request that cannot answer from memory (an item never held) fetches in the foreground; the
    // expired lists it named are not marked as reloading, so the next request hands them over.
    const fresh = new CachedCoVisitation(port, { maxEntries: 100, ttlMs: 1000, clock: () => now });
    fresh.reloader = (key, reload) => reloads.push({ key, reload });
    port.coVisited = async (ids) => new Map(ids.map((id) => [id, [{ itemId: `${id}-n`, score: 1 }]]));
    await fresh.coVisited(['a'], 30, budget);
    now += 5000;
    expect(fresh.peek(['a', 'never'], 30)).toBeUndefined();
    expect(reloads).toHaveLength(4);
    expect(fresh.peek(['a'], 30)?.size).toBe(1);
    expect(reloads).toHaveLength(5);
  });

  test('sequence retrievals are keyed by history, k and exclusions, and dropped when the model changes', async () => {
    let version = 'v1';
    let calls = 0;
    const cached = new CachedSequenceRetrieval(
      {
        bySequence: async () => {
          calls++;
          return { items: [{ itemId: 'x', score: 1 }], version };
        },
      },
      { maxEntries: 10, ttlMs: 60_000 },
    );
    await cached.bySequence(['a', 'b'], 100, [], budget);
    await cached.bySequence(['a', 'b'], 100, [], budget);
    await cached.bySequence(['a', 'b'], 100, ['x'], budget);
    await cached.bySequence(['a', 'b', 'c'], 100, [], budget);
    expect(calls).toBe(3);
    expect(cached.peek(['a', 'b'], 100, ['x'])?.version).toBe('v1');
    expect(cached.peek(['a'], 100, [])).toBeUndefined();
    version = 'v2';
    cached.clear();
    expect((await cached.bySequence(['a', 'b'], 100, [], budget)).version).toBe('v2');
  });
});
