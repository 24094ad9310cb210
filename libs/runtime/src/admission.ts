import { DeadlineExceededError, ResourceExhaustedError } from '@aisle/contracts';

export interface AdmissionLimits {
  /** Calls of one RPC worked on at once. */
  maxConcurrent: number;
  /** Calls of one RPC waiting for a slot; a call beyond it is refused at once. */
  maxQueue: number;
}

/** Refused because the RPC's queue is full: the caller should retry after `retryAfterMs`. */
export class OverloadedError extends ResourceExhaustedError {
  override readonly name = 'OverloadedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The call's deadline passed before it could start: it is never worked on. */
export class ExpiredBeforeStartError extends DeadlineExceededError {
  override readonly name = 'ExpiredBeforeStartError';
}

export class CancelledBeforeStartError extends DeadlineExceededError {
  override readonly name = 'CancelledBeforeStartError';
}

interface Waiter {
  deadline: number | undefined;
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  signal: AbortSignal | undefined;
}

/**
 * Admission control for one RPC: at most `maxConcurrent` calls run, at most `maxQueue` wait (FIFO);
 * beyond that, or when the wait a call can expect (the queue ahead over the slots, times the recent mean
 * time a call holds a slot) would outlast its deadline, it is refused at once with a retry hint
 * (OverloadedError) instead of queueing past its deadline. A call whose deadline has passed (on arrival, or while it waited) or whose caller left
 * is never started. The hint is the expected wait: the queue ahead over the slots, times the recent
 * mean time a call holds a slot.
 */
export class Admission {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private meanServiceMs = 1;

  constructor(
    readonly limits: AdmissionLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  get inFlight(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  retryAfterMs(): number {
    const ahead = this.queue.length + this.running;
    return Math.max(5, Math.ceil((this.meanServiceMs * ahead) / Math.max(1, this.limits.maxConcurrent)));
  }

  /**
   * Resolves with `release` once the call may run; rejects when it is refused or expires first.
   * `cancellation` (the caller's signal, made on demand) is only looked at when the call has to wait.
   */
  acquire(deadline: number | undefined, cancellation?: () => AbortSignal): Promise<() => void> {
    const now = this.clock();
    if (deadline !== undefined && deadline <= now)
      return Promise.reject(new ExpiredBeforeStartError('deadline passed before the call started'));
    if (this.running < this.limits.maxConcurrent && this.queue.length === 0) return Promise.resolve(this.start());
    const signal = cancellation?.();
    if (signal?.aborted) return Promise.reject(new CancelledBeforeStartError('cancelled before the call started'));
    // Refused at once when the queue is full, or when the wait it can expect would outlast its deadline.
    const expectedWaitMs =
      Math.ceil((this.queue.length + 1) / Math.max(1, this.limits.maxConcurrent)) * this.meanServiceMs;
    if (this.queue.length >= this.limits.maxQueue || (deadline !== undefined && now + expectedWaitMs > deadline)) {
      const retryAfterMs = this.retryAfterMs();
      return Promise.reject(
        new OverloadedError(
          `overloaded: ${this.running} calls running, ${this.queue.length} waiting; retry after ${retryAfterMs} ms`,
          retryAfterMs,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { deadline, resolve, reject, timer: undefined, onAbort: undefined, signal };
      const drop = (err: Error) => {
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
        this.settle(w);
        reject(err);
      };
      if (deadline !== undefined)
        w.timer = setTimeout(
          () => drop(new ExpiredBeforeStartError('deadline passed while the call waited to start')),
          deadline - now,
        );
      if (signal) {
        w.onAbort = () => drop(new CancelledBeforeStartError('cancelled while the call waited to start'));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
    });
  }

  private settle(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
  }

  private start(): () => void {
    this.running++;
    const started = this.clock();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.meanServiceMs = 0.9 * this.meanServiceMs + 0.1 * Math.max(0, this.clock() - started);
      const now = this.clock();
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        this.settle(next);
        if (next.deadline !== undefined && next.deadline <= now)
          next.reject(new ExpiredBeforeStartError('deadline passed while the call waited to start'));
        else {
          next.resolve(this.start());
          break;
        }
      }
    };
  }
}
