import { DeadlineExceededError } from '@aisle/contracts';
import type { CallBudget, Surface, UserProfile, Neighbor } from './ports';
import type { Filters } from './requests';

/** Thrown by a caching port when its dependency failed but an older value can serve: used, and flagged. */
export class StaleFallback<T> extends Error {
  override readonly name = 'StaleFallback';
  constructor(
    readonly value: T,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** The request stopped waiting for a dependency: its dependency deadline passed or the caller left. */
export class DependencyDeadlineError extends Error {
  override readonly name = 'DependencyDeadlineError';
}

// Shared instances: a request that gives up on a dependency builds no error (nor stack) of its own.
const GAVE_UP = new DependencyDeadlineError(`no answer by the request's dependency deadline`);
const CALLER_LEFT = new DependencyDeadlineError('the caller left');
const ANSWERED = new DependencyDeadlineError('the request was answered without it');

/**
 * The caller's deadline passed while the request was being worked on: nothing more is done for it (the
 * caller has given up; an answer now would be wasted work taken from requests still in time).
 */
export class RequestExpiredError extends DeadlineExceededError {
  override readonly name = 'RequestExpiredError';
}

/** Collects why an answer is degraded; each dependency is named once. */
export class Degradation {
  readonly reasons: string[] = [];

  note(dependency: string, err: unknown): void {
    const msg = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    const prefix = `${dependency}:`;
    if (!this.reasons.some((r) => r.startsWith(prefix))) this.reasons.push(`${prefix} ${msg}`);
  }

  get degraded(): boolean {
    return this.reasons.length > 0;
  }
}

export interface DeadlinePolicy {
  /** The longest a request may take when the caller sets no (or a later) deadline. */
  deadlineMs: number;
  /** The longest one dependency call may take (always inside the request's dependency deadline). */
  dependencyTimeoutMs: number;
  /**
   * Kept free at the end of the request for what follows the dependencies (features, ranker, rules,
   * the response): a share of the whole budget, within [minReserveMs, maxReserveMs].
   */
  reserveShare: number;
  minReserveMs: number;
  maxReserveMs: number;
  /** Answer this much before the caller's deadline, so the response is on the wire in time. */
  marginMs: number;
}

export const DEFAULT_DEADLINE_POLICY: DeadlinePolicy = {
  deadlineMs: 300,
  dependencyTimeoutMs: 150,
  // Generous on purpose: on a busy machine timers fire late, and the answer must still be out in time.
  reserveShare: 0.25,
  minReserveMs: 5,
  maxReserveMs: 40,
  marginMs: 5,
};

export interface RequestInit {
  tenant: string;
  surface: Surface;
  requestId: string;
  userId: string;
  sessionId?: string | undefined;
  query: string;
  limit: number;
  filters: Filters;
  context: Record<string, string>;
  explain: boolean;
  callerDeadline?: number | undefined;
  signal?: AbortSignal | (() => AbortSignal) | undefined;
}

/**
 * Everything one request carries through the stages: what was asked, its one deadline, what was learned
 * about the user, which model versions answered and why the answer is degraded. Dependency calls go
 * through `call`, which gives each the time left and turns failure or lateness into a degradation.
 */
export class RequestContext {
  readonly tenant: string;
  readonly surface: Surface;
  readonly requestId: string;
  readonly userId: string;
  readonly sessionId: string | undefined;
  readonly query: string;
  readonly limit: number;
  readonly filters: Filters;
  readonly context: Record<string, string>;
  readonly explain: boolean;
  readonly startedAt: number;
  /** When the answer must be out. */
  readonly deadline: number;
  /** When the request stops waiting for dependencies. */
  readonly dependencyDeadline: number;
  /** The caller's own deadline, when it set one. */
  readonly callerDeadline: number | undefined;
  readonly degradation = new Degradation();
  /** Model versions that contributed, in order (`sasrec:v3`, ...). */
  readonly versions: string[] = [];
  user: UserProfile | undefined;
  /** Co-visits of recent items, from the user context. */
  coVisits: ReadonlyMap<string, readonly Neighbor[]> = new Map();
  /** The items the user interacted with, oldest first (history plus session items). */
  history: string[] = [];
  /** The user's churn risk, when a rule asked for it and it is known. */
  churnRisk: number | undefined;

  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expired: Promise<never> | undefined;
  /** Dependency calls still running. */
  private pending = 0;
  /** The caller's cancellation, followed only once a dependency is called. */
  private readonly callerSignal: AbortSignal | (() => AbortSignal) | undefined;

  constructor(
    init: RequestInit,
    private readonly policy: DeadlinePolicy,
    private readonly clock: () => number,
  ) {
    this.tenant = init.tenant;
    this.surface = init.surface;
    this.requestId = init.requestId;
    this.userId = init.userId;
    this.sessionId = init.sessionId;
    this.query = init.query;
    this.limit = init.limit;
    this.filters = init.filters;
    this.context = init.context;
    this.explain = init.explain;
    this.startedAt = clock();
    this.callerDeadline = init.callerDeadline;
    const own = this.startedAt + policy.deadlineMs;
    this.deadline = init.callerDeadline !== undefined ? Math.min(own, init.callerDeadline - policy.marginMs) : own;
    const budget = Math.max(0, this.deadline - this.startedAt);
    const reserve = Math.min(policy.maxReserveMs, Math.max(policy.minReserveMs, budget * policy.reserveShare));
    this.dependencyDeadline = this.deadline - reserve;
    this.callerSignal = init.signal;
  }

  now(): number {
    return this.clock();
  }

  /** Milliseconds left for dependencies. */
  dependencyTimeLeft(): number {
    return this.dependencyDeadline - this.clock();
  }

  private abortController(): AbortController {
    if (!this.controller) {
      const c = new AbortController();
      this.controller = c;
      this.expired = new Promise<never>((_, reject) =>
        c.signal.addEventListener('abort', () => reject(c.signal.reason instanceof Error ? c.signal.reason : GAVE_UP), {
          once: true,
        }),
      );
      this.expired.catch(() => undefined);
      // One timer per request, created only when a dependency is actually called.
      const left = this.dependencyTimeLeft();
      if (left <= 0) c.abort(GAVE_UP);
      else this.timer = setTimeout(() => c.abort(GAVE_UP), left);
      const caller = typeof this.callerSignal === 'function' ? this.callerSignal() : this.callerSignal;
      if (caller?.aborted) c.abort(CALLER_LEFT);
      else caller?.addEventListener('abort', () => c.abort(CALLER_LEFT), { once: true });
    }
    return this.controller;
  }

  /**
   * Calls a dependency with the time left (at most `dependencyTimeoutMs`). Failure, lateness or no time
   * left make the answer degraded (naming `dependency`) and return undefined; a cache's stale value is
   * returned, still flagged.
   */
  async call<T>(dependency: string, fn: (budget: CallBudget) => Promise<T>): Promise<T | undefined> {
    const now = this.clock();
    const deadline = Math.min(this.dependencyDeadline, now + this.policy.dependencyTimeoutMs);
    if (deadline - now < 1) {
      this.degradation.note(dependency, new DependencyDeadlineError('no time left for the call'));
      return undefined;
    }
    const controller = this.abortController();
    if (controller.signal.aborted) {
      this.degradation.note(dependency, new DependencyDeadlineError('the request stopped waiting'));
      return undefined;
    }
    this.pending++;
    try {
      return await Promise.race([fn({ deadline, signal: controller.signal }), this.expired as Promise<never>]);
    } catch (err) {
      this.degradation.note(dependency, err);
      return err instanceof StaleFallback ? (err.value as T) : undefined;
    } finally {
      this.pending--;
    }
  }

  /**
   * Between stages: stops the request (RequestExpiredError, DEADLINE_EXCEEDED) once the caller's deadline
   * has passed, so that work the caller can no longer use is not done.
   */
  checkpoint(stage: string): void {
    if (this.callerDeadline !== undefined && this.clock() >= this.callerDeadline)
      throw new RequestExpiredError(`the caller's deadline passed before ${stage}`);
  }

  /** Notes a failure of something that is not a dependency call (the ranker, say). */
  degrade(what: string, err: unknown): void {
    this.degradation.note(what, err);
  }

  /** Frees the request's timer and cancels dependency calls still running; called once the answer is built. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending > 0 && this.controller && !this.controller.signal.aborted) this.controller.abort(ANSWERED);
  }
}
