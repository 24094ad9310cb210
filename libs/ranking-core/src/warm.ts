import type { CachedSequenceRetrieval, CachedUserContext } from './cache';
import type { CallBudget } from './ports';
import { USER_CONTEXT_OPTIONS } from './sources/co-visitation';
import { sequenceTail } from './sources/sequence';

export interface BackgroundRefreshOptions {
  /** Most refreshes running at once (each is one or two dependency calls). */
  concurrency: number;
  /** Most refreshes waiting; beyond it new ones are dropped (`onDropped`) and the next request fetches. */
  maxPending: number;
  /** Each refresh's time limit. */
  timeoutMs: number;
  onDropped?: () => void;
  onFailed?: (err: unknown) => void;
}

/**
 * Dependency calls made off the request path, bounded: at most `concurrency` at once, at most
 * `maxPending` waiting, one per key (a key asked again while waiting runs once, with the newest work).
 */
export class BackgroundRefresh {
  private readonly pending = new Map<string, (budget: CallBudget) => Promise<void>>();
  private readonly running = new Set<string>();
  private stopped = false;

  constructor(private readonly opts: BackgroundRefreshOptions) {}

  /** Work waiting or running. */
  get size(): number {
    return this.pending.size + this.running.size;
  }

  run(key: string, work: (budget: CallBudget) => Promise<void>): void {
    if (this.stopped) return;
    if (!this.pending.has(key) && this.pending.size >= this.opts.maxPending) {
      this.opts.onDropped?.();
      return;
    }
    this.pending.set(key, work);
    this.pump();
  }

  /** Drops what waits; what runs finishes (or times out). */
  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }

  private pump(): void {
    for (const [key, work] of this.pending) {
      if (this.running.size >= this.opts.concurrency) return;
      // A key running now waits for its own run to end, so that its newer work runs after.
      if (this.running.has(key)) continue;
      this.pending.delete(key);
      this.running.add(key);
      const signal = AbortSignal.timeout(this.opts.timeoutMs);
      work({ deadline: Date.now() + this.opts.timeoutMs, signal })
        .catch((err: unknown) => this.opts.onFailed?.(err))
        .finally(() => {
          this.running.delete(key);
          this.pump();
        });
    }
  }
}

/**
 * Keeps the users who act warm: when the feature service announces that a user changed, their cached
 * context goes at once (so no request sees the old one) and a background refresh loads the new one with
 * the sequence retrieval of its history, which Recommend and Rank read; when the sequence model changes,
 * the retrievals of every cached user are loaded again. A request for an active user then makes no
 * dependency call; one that arrives before the refresh ends fetches as before.
 */
export class UserWarmer {
  constructor(
    private readonly users: CachedUserContext,
    private readonly retrieval: CachedSequenceRetrieval | undefined,
    private readonly refresh: BackgroundRefresh,
    /** The retrieval size the pipeline asks for (one cached retrieval per history serves every surface). */
    private readonly k: number,
  ) {
    // An expired context reloads with its retrieval (the history may have changed); a retrieval alone.
    users.reloader = (userId) => this.refresh.run(userId, (b) => this.warm(userId, b));
    if (retrieval) retrieval.reloader = (key, reload) => this.refresh.run(`retrieval\u001d${key}`, reload);
  }

  /** The feature service announced a change of the user. */
  updated(userId: string): void {
    this.users.invalidate(userId);
    this.refresh.run(userId, (b) => this.warm(userId, b));
  }

  /** The user is to be forgotten: nothing is loaded again. */
  forgotten(userId: string): void {
    this.users.invalidate(userId);
  }

  /** After a reconnect the announcements missed are unknown: every cached user goes. */
  clear(): void {
    this.users.clear();
  }

  /** A new sequence model: every cached user's retrieval is loaded again in the background. */
  modelChanged(): void {
    this.retrieval?.clear();
    for (const userId of this.users.cachedUsers()) this.refresh.run(userId, (b) => this.warm(userId, b));
  }

  private async warm(userId: string, budget: CallBudget): Promise<void> {
    const got = await this.users.userContext(userId, USER_CONTEXT_OPTIONS, budget);
    const history = got.user?.recent.map((r) => r.itemId) ?? [];
    if (this.retrieval && history.length > 0)
      await this.retrieval.bySequence(sequenceTail(history), this.k, [], budget);
  }
}
