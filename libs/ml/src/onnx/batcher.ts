/**
 * Dynamic batching in front of a model session: a batch holds at most `maxBatch`; one batch runs at a
 * time (per batcher), and requests arriving meanwhile form the next one. When the last batch had
 * company (concurrent callers), a partial batch waits at most `maxDelayMs` to fill up; a lone caller
 * is never delayed. A request that waited longer than `budgetMs` is shed, not run late.
 */
export class BatchShedError extends Error {
  override readonly name = 'BatchShedError';
}

export class BatcherClosedError extends Error {
  override readonly name = 'BatcherClosedError';
}

interface Pending<I, O> {
  item: I;
  at: number;
  resolve: (o: O) => void;
  reject: (e: Error) => void;
}

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  budgetMs: number;
}

export interface BatcherStats {
  batches: number;
  items: number;
  shed: number;
}

export class DynamicBatcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private lastBatchSize = 1;
  readonly stats: BatcherStats = { batches: 0, items: 0, shed: 0 };

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  submit(item: I): Promise<O> {
    if (this.closed) return Promise.reject(new BatcherClosedError('batcher closed'));
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, at: this.clock(), resolve, reject });
      this.schedule();
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.opts.maxBatch || this.opts.maxDelayMs <= 0 || this.lastBatchSize <= 1) {
      this.flush();
      return;
    }
    if (!this.timer && this.queue.length > 0) {
      const waited = this.clock() - (this.queue[0] as Pending<I, O>).at;
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.opts.maxDelayMs - waited));
    }
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running || this.queue.length === 0) return;
    const now = this.clock();
    const batch: Array<Pending<I, O>> = [];
    while (this.queue.length > 0 && batch.length < this.opts.maxBatch) {
      const p = this.queue.shift() as Pending<I, O>;
      const waited = now - p.at;
      if (waited > this.opts.budgetMs) {
        this.stats.shed++;
        p.reject(new BatchShedError(`queued ${waited.toFixed(1)} ms, over the ${this.opts.budgetMs} ms budget`));
      } else batch.push(p);
    }
    if (batch.length === 0) return this.schedule();
    this.stats.batches++;
    this.stats.items += batch.length;
    this.lastBatchSize = batch.length;
    this.running = this.run(batch.map((b) => b.item))
      .then(
        (outs) => {
          if (outs.length !== batch.length)
            throw new Error(`batch returned ${outs.length} results for ${batch.length} items`);
          batch.forEach((b, i) => b.resolve(outs[i] as O));
        },
        (err: unknown) => batch.forEach((b) => b.reject(err instanceof Error ? err : new Error(String(err)))),
      )
      .catch((err: unknown) => batch.forEach((b) => b.reject(err instanceof Error ? err : new Error(String(err)))))
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  /** Resolves once everything queued before the call has run (used before releasing a swapped-out session). */
  async drain(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.flush();
      await this.running;
    }
  }

  /** Rejects new submissions; what is queued still runs. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }
}
