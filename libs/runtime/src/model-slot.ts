import type { Counter, Registry } from 'prom-client';
import { counterIn } from './metrics';
import type { Logger } from './logger';
import { isTransientError } from './nats';
import { type ModelArtifact, type ModelName, type ModelRegistry } from './model-registry';

/** A model a service can serve: built from an artifact (its ORT adapter), released when replaced. */
export interface ServingModel {
  readonly version: string;
  /** Frees the session (after the work already queued on it). */
  release(): Promise<void>;
}

export interface ModelSlotOptions<M extends ServingModel> {
  registry: ModelRegistry;
  tenant: string;
  name: ModelName;
  /** Builds and warms up a serving model from a verified artifact (the service's ORT adapter). */
  load(artifact: ModelArtifact): Promise<M>;
  /** Runs the loaded model on probe inputs and throws (e.g. `expectFinite` of @aisle/ml) if its answers are unfit. */
  probe(model: M): Promise<void>;
  /** The switch: the domain starts using `model` (synchronous, so no request sees half a swap). */
  activate(model: M, previous: M | undefined): void;
  logger: Logger;
  metrics?: Registry;
  /** How long a replaced model lives on for calls that still hold it (default 5 s). */
  releaseDelayMs?: number;
}

/**
 * Models taken out of service (replaced or evicted) but possibly still held by calls in flight: each is
 * released after a grace period, or at once by `releaseAll` (shutdown).
 */
export class RetiringModels<M extends ServingModel> {
  private readonly models = new Set<M>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly delayMs: number,
    private readonly logger: Logger,
  ) {}

  add(old: M): void {
    this.models.add(old);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.models.delete(old);
      void old.release().catch((err: unknown) => this.logger.warn('releasing a model failed', { err }));
    }, this.delayMs);
    timer.unref();
    this.timers.add(timer);
  }

  /** Releases every model still waiting, now. */
  async releaseAll(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all = [...this.models];
    this.models.clear();
    await Promise.all(all.map((m) => m.release().catch(() => undefined)));
  }
}

/** Pointers refused (by content digest) are remembered, so a burst of announcements reads none of them twice. */
const REFUSED_MEMORY = 16;

/**
 * The one hot-swap mechanism of every service that serves a model (embedding-inference, ranking,
 * churn-prediction): on start and on each announcement it reads the active pointer's version from its
 * object metadata, and only when that differs from the serving version does it check the pointer
 * (signature, sizes), download, load, warm up and probe the new version, then switch atomically and
 * release the old one after a grace period. One load at a time per model: announcements that arrive
 * during a load collapse into one more look at the pointer afterwards. A version that fails any check
 * is refused and the serving one stays.
 */
export class ModelSlot<M extends ServingModel> {
  private model: M | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly refused: string[] = [];
  private readonly retiring: RetiringModels<M>;
  private readonly loads: Counter<'model' | 'result'> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: ModelSlotOptions<M>) {
    this.retiring = new RetiringModels<M>(opts.releaseDelayMs ?? 5_000, opts.logger);
    this.loads = opts.metrics
      ? counterIn(
          opts.metrics,
          'aisle_model_loads_total',
          'Model versions checked, by result (active, refused, failed)',
          ['model', 'result'],
        )
      : undefined;
  }

  /** The serving model, if one passed its checks. */
  get current(): M | undefined {
    return this.model;
  }

  /** Loads the active version (errors are logged; the service starts without a model) and follows announcements. */
  async start(): Promise<void> {
    const sub = this.opts.registry.watch((meta) => {
      if (meta.tenant === this.opts.tenant && meta.name === this.opts.name) void this.refresh();
    });
    this.unsubscribe = () => sub.unsubscribe();
    await this.refresh();
  }

  /**
   * Looks at the active pointer and switches to the version it names if that passes every check. Never
   * throws; concurrent calls share one run, plus at most one more after it.
   */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.once();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async once(): Promise<void> {
    const { registry, tenant, name, logger } = this.opts;
    const log = logger.child({ model: name });
    let version: string | undefined;
    let pointer: string | undefined;
    try {
      // Cheap first: the pointer's object metadata, nothing downloaded.
      const info = await registry.pointerInfo(tenant, name);
      if (!info || this.refused.includes(info.digest)) return;
      if (info.version !== undefined && info.version === this.model?.version) return;
      pointer = info.digest;
      const meta = await registry.activeMeta(tenant, name);
      if (!meta || meta.version === this.model?.version) return;
      version = meta.version;
      // An older version is loaded like any other: the pointer names it after a roll back (the console's
      // ModelRegistry.activate), and it must carry the trainer's signature and pass every check all the same.
      const started = performance.now();
      const fresh = await this.opts.load(await registry.load(meta));
      try {
        await this.opts.probe(fresh);
      } catch (err) {
        await fresh.release().catch(() => undefined);
        throw err;
      }
      if (this.stopped) {
        await fresh.release();
        return;
      }
      const previous = this.model;
      this.model = fresh;
      this.opts.activate(fresh, previous);
      this.loads?.inc({ model: name, result: 'active' });
      log.info('model active', {
        version: fresh.version,
        replaced: previous?.version,
        load_ms: Math.round(performance.now() - started),
      });
      if (previous) this.retiring.add(previous);
    } catch (err) {
      // Refused for what it is (not for a bus or store hiccup): the same pointer is not read again.
      if (pointer !== undefined && !isTransientError(err)) this.remember(pointer);
      this.refuse(log, version, err);
    }
  }

  private refuse(log: Logger, version: string | undefined, err: unknown): void {
    this.loads?.inc({ model: this.opts.name, result: isTransientError(err) ? 'failed' : 'refused' });
    log.error(this.model ? 'model refused; keeping the serving version' : 'model refused; no version is serving', {
      version,
      serving: this.model?.version ?? null,
      err,
    });
  }

  private remember(key: string): void {
    if (this.refused.includes(key)) return;
    this.refused.push(key);
    if (this.refused.length > REFUSED_MEMORY) this.refused.shift();
  }

  /** Stops following announcements, waits for a load in progress, and releases every model it holds. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.running;
    const current = this.model;
    this.model = undefined;
    await Promise.all([this.retiring.releaseAll(), current?.release().catch(() => undefined)]);
  }
}
