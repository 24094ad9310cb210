import { CachedSequenceRetrieval, CachedUserContext } from './cache';
import type { CallBudget, UserContextPort } from './ports';
import { SEQUENCE_HISTORY } from './sources/sequence';
import { profile } from './testing.fixture';
import { BackgroundRefresh, UserWarmer } from './warm';

const budget: CallBudget = { deadline: Date.now() + 1000, signal: new AbortController().signal };

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe('BackgroundRefresh', () => {
  test('runs at most `concurrency` at once, one per key with the newest work, and drops beyond `maxPending`', async () => {
    let dropped = 0;
    const refresh = new BackgroundRefresh({
      concurrency: 2,
      maxPending: 3,
      timeoutMs: 1000,
      onDropped: () => dropped++,
    });
    const g = gate();
    let running = 0;
    let most = 0;
    const ran: string[] = [];
    const work = (name: string) => async () => {
      running++;
      most = Math.max(most, running);
      await g.opened;
      ran.push(name);
      running--;
    };
    refresh.run('a', work('a1'));
    refresh.run('b', work('b1'));
    // a and b run; c, d and a (again, while running) wait; e is one too many.
    refresh.run('c', work('c1'));
    refresh.run('c', work('c2'));
    refresh.run('d', work('d1'));
    refresh.run('a', work('a2'));
    refresh.run('e', work('e1'));
    expect(dropped).toBe(1);
    expect(refresh.size).toBe(5);
    g.open();
    await until(() => refresh.size === 0);
    expect(most).toBe(2);
    expect(ran.sort()).toEqual(['a1', 'a2', 'b1', 'c2', 'd1']);
  });

  test('a failing or hanging refresh is reported and frees its slot by its time limit', async () => {
    const failed: unknown[] = [];
    const refresh = new BackgroundRefresh({
      concurrency: 1,
      maxPending: 10,
      timeoutMs: 50,
      onFailed: (e) => failed.push(e),
    });
    refresh.run(
      'hang',
      (b) => new Promise((_, reject) => b.signal.addEventListener('abort', () => reject(new Error('timed out')))),
    );
    let ran = false;
    refresh.run('next', async () => {
      ran = true;
    });
    await until(() => ran);
    expect(String(failed[0])).toContain('timed out');
  });
});

describe('UserWarmer', () => {
  function setup(clock = () => Date.now()) {
    const contexts: string[] = [];
    const retrievals: string[][] = [];
    let history = ['a', 'b'];
    let version = 'v1';
    const port: UserContextPort = {
      userContext: async (id) => {
        contexts.push(id);
        return { user: profile(id, history), coVisits: new Map() };
      },
    };
    const users = new CachedUserContext(port, { maxEntries: 100, ttlMs: 1000, clock });
    const retrieval = new CachedSequenceRetrieval(
      {
        bySequence: async (h) => {
          retrievals.push([...h]);
          return { items: [{ itemId: 'x', score: 1 }], version };
        },
      },
      { maxEntries: 100, ttlMs: 60_000, clock },
    );
    const refresh = new BackgroundRefresh({ concurrency: 2, maxPending: 100, timeoutMs: 1000 });
    const warmer = new UserWarmer(users, retrieval, refresh, 300);
    return {
      users,
      retrieval,
      refresh,
      warmer,
      contexts,
      retrievals,
      setHistory: (h: string[]) => (history = h),
      setVersion: (v: string) => (version = v),
    };
  }

  test('a change drops the user at once and loads their new context and its retrieval in the background', async () => {
    const w = setup();
    await w.users.userContext('u1', { coVisitItems: 5, coVisitLimit: 30 }, budget);
    w.setHistory(['a', 'b', 'c']);
    w.warmer.updated('u1');
    // No request sees the old context once the change is announced.
    expect(w.users.peek('u1')).toBeUndefined();
    await until(() => w.refresh.size === 0);
    expect(w.users.peek('u1')?.user?.recent.map((r) => r.itemId)).toEqual(['a', 'b', 'c']);
    expect(w.retrieval.peek(['a', 'b', 'c'], 300, [])?.version).toBe('v1');
    expect(w.contexts).toEqual(['u1', 'u1']);
  });

  test('the retrieval is of the history the sequence model takes (its last SEQUENCE_HISTORY items)', async () => {
    const w = setup();
    const long = Array.from({ length: SEQUENCE_HISTORY + 7 }, (_, i) => `i${i}`);
    w.setHistory(long);
    w.warmer.updated('u1');
    await until(() => w.refresh.size === 0);
    expect(w.retrievals).toEqual([long.slice(-SEQUENCE_HISTORY)]);
  });

  test('a forgotten user is dropped and not loaded again', async () => {
    const w = setup();
    await w.users.userContext('u1', { coVisitItems: 5, coVisitLimit: 30 }, budget);
    w.warmer.forgotten('u1');
    await new Promise((r) => setTimeout(r, 20));
    expect(w.users.peek('u1')).toBeUndefined();
    expect(w.contexts).toEqual(['u1']);
  });

  test('a new sequence model drops every retrieval and loads those of the cached users again', async () => {
    const w = setup();
    w.warmer.updated('u1');
    w.warmer.updated('u2');
    await until(() => w.refresh.size === 0);
    w.setVersion('v2');
    w.warmer.modelChanged();
    expect(w.retrieval.peek(['a', 'b'], 300, [])).toBeUndefined();
    await until(() => w.refresh.size === 0);
    expect(w.retrieval.peek(['a', 'b'], 300, [])?.version).toBe('v2');
    // Contexts were fresh: only the retrievals were asked again.
    expect(w.contexts).toEqual(['u1', 'u2']);
  });

  test('a context past its TTL answers once while it is loaded again; a cleared one does not', async () => {
    let now = 0;
    const w = setup(() => now);
    await w.users.userContext('u1', { coVisitItems: 5, coVisitLimit: 30 }, budget);
    now = 5000;
    w.setHistory(['z']);
    expect(w.users.peek('u1')?.user?.recent.map((r) => r.itemId)).toEqual(['a', 'b']);
    await until(() => w.refresh.size === 0);
    expect(w.users.peek('u1')?.user?.recent.map((r) => r.itemId)).toEqual(['z']);
    w.warmer.clear();
    expect(w.users.peek('u1')).toBeUndefined();
  });
});
