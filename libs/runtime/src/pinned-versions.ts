import { FailedPreconditionError, NotFoundError, ResourceExhaustedError, UnavailableError } from '@aisle/contracts';
import type { Logger } from './logger';
import type { ModelArtifact, ModelName, ModelRegistry } from './model-registry';
import { RetiringModels, type ServingModel } from './model-slot';
import { isTransientError } from './nats';

export interface PinnedVersionsOptions<M extends ServingModel> {
  registry: Pick<ModelRegistry, 'versionMeta' | 'load'>;
  tenant: string;
  name: ModelName;
  /** Builds and warms up a serving model from a verified artifact (the same function the kind's ModelSlot uses). */
  load(artifact: ModelArtifact): Promise<M>;
  /** Checks a loaded model's answers (the same probe the kind's ModelSlot runs). */
  probe(model: M): Promise<void>;
  /** Most versions kept loaded besides the active one (the least recently used goes first). */
  capacity: number;
  logger: Logger;
  /** How long an evicted model lives on for calls that still hold it (default 5 s). */
  releaseDelayMs?: number;
  /** How long a refused version is answered from memory before it is tried again (default 30 s). */
  retryAfterMs?: number;
  clock?: () => number;
}

/**
 * Versions other than the active one that callers ask for by name (an experiment arm's pin), for one
 * tenant and model kind: loaded from the model registry on first use and checked like an active version
 * (the registry checks signature, sizes and digests; then the kind's probe), then kept among at most
 * `capacity` recently used ones; an evicted version is released after a grace period. Concurrent requests
 * for a version share one load. The active version is not held here: the service's ModelSlot holds it.
 *
 * Answers: NotFoundError when the registry has no such version, FailedPreconditionError when it cannot be
 * served (refused by a check, failed to load or probe; remembered for `retryAfterMs`), UnavailableError when
 * the registry cannot be read now, ResourceExhaustedError when `capacity` loads are already under way.
 */
export class PinnedVersions<M extends ServingModel> {
  /** Loaded versions, least recently used first (Map order). */
  private readonly loaded = new Map<string, M>();
  private readonly loading = new Map<string, Promise<M>>();
  private readonly refused = new Map<string, { error: Error; until: number }>();
  private readonly retiring: RetiringModels<M>;
  private stopped = false;

  constructor(private readonly opts: PinnedVersionsOptions<M>) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 0) throw new RangeError('capacity must be an integer >= 0');
    this.retiring = new RetiringModels<M>(opts.releaseDelayMs ?? 5_000, opts.logger);
  }

  private now(): number {
    return this.opts.clock?.() ?? Date.now();
  }

  /** The loaded versions, least recently used first. */
  versions(): string[] {
    return [...this.loaded.keys()];
  }

  /** The loaded models (e.g. to keep a text index up to date in each). */
  models(): M[] {
    return [...this.loaded.values()];
  }

  /** The model of `version`, loading it first if needed; throws as the class comment says. */
  async get(version: string): Promise<M> {
    const { name } = this.opts;
    if (this.stopped) throw new UnavailableError(`${name} versions are no longer served here (shutting down)`);
    if (this.opts.capacity === 0)
      throw new FailedPreconditionError(
        `${name} ${version} is not the active version and no other versions are served here (capacity 0)`,
      );
    const hit = this.loaded.get(version);
    if (hit) {
      // Map order is insertion order: re-inserting marks it as the most recently used.
      this.loaded.delete(version);
      this.loaded.set(version, hit);
      return hit;
    }
    const refused = this.refused.get(version);
    if (refused && refused.until > this.now()) throw refused.error;
    this.refused.delete(version);
    let pending = this.loading.get(version);
    if (!pending) {
      if (this.loading.size >= this.opts.capacity)
        throw new ResourceExhaustedError(`${this.loading.size} ${name} versions are loading already; retry shortly`);
      pending = this.load(version).finally(() => this.loading.delete(version));
      this.loading.set(version, pending);
    }
    return pending;
  }

  private async load(version: string): Promise<M> {
    const { registry, tenant, name, logger } = this.opts;
    const started = performance.now();
    let model: M;
    try {
      const meta = await registry.versionMeta(tenant, name, version);
      if (!meta)
        throw new NotFoundError(`the model registry has no ${name} version '${version}' for tenant '${tenant}'`);
      model = await this.opts.load(await registry.load(meta));
      try {
        await this.opts.probe(model);
      } catch (err) {
        await model.release().catch(() => undefined);
        throw err;
      }
    } catch (err) {
      if (isTransientError(err))
        throw new UnavailableError(`the model registry cannot be read now (${name} ${version}); retry`, { cause: err });
      const error =
        err instanceof NotFoundError
          ? err
          : new FailedPreconditionError(
              `${name} ${version} cannot be served: ${err instanceof Error ? err.message : String(err)}`,
              { cause: err },
            );
      this.refused.set(version, { error, until: this.now() + (this.opts.retryAfterMs ?? 30_000) });
      logger.warn('pinned model version refused', { model: name, version, err });
      throw error;
    }
    if (this.stopped) {
      await model.release().catch(() => undefined);
      throw new UnavailableError(`${name} versions are no longer served here (shutting down)`);
    }
    this.loaded.set(version, model);
    logger.info('pinned model version loaded', {
      model: name,
      version,
      load_ms: Math.round(performance.now() - started),
    });
    while (this.loaded.size > this.opts.capacity) {
      const [oldest, m] = this.loaded.entries().next().value as [string, M];
      this.loaded.delete(oldest);
      logger.info('pinned model version evicted', { model: name, version: oldest, capacity: this.opts.capacity });
      this.retiring.add(m);
    }
    return model;
  }

  /** Waits for loads under way, then releases every model it holds. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.loading.values()]);
    const all = [...this.loaded.values()];
    this.loaded.clear();
    await Promise.all([this.retiring.releaseAll(), ...all.map((m) => m.release().catch(() => undefined))]);
  }
}
