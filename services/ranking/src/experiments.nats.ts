import {
  pinsOf,
  revalidateExperiment,
  takesTraffic,
  type Experiment,
  type InProcessModel,
  type PinnableModel,
} from '@aisle/experiments';
import type { ExperimentBucket, Logger, ModelArtifact, ModelRegistry, ServingModel } from '@aisle/runtime';
import { ArmNotReadyError, type ArmModels, type PinnedModels } from './arm-pipelines';

/** How ranking builds and checks a served model of one kind (the same functions its ModelSlot uses). */
export interface ModelLoader<M extends ServingModel> {
  load(artifact: ModelArtifact): Promise<M>;
  probe(model: M): Promise<void>;
}

export type ModelLoaders = { [K in InProcessModel]: ModelLoader<ArmModels[K] & ServingModel> };

const keyOf = (model: string, version: string) => `${model}:${version}`;

/**
 * Model versions pinned by experiment arms (ranker, search model, session model), loaded from the model
 * registry as soon as an experiment names them and checked like an active version (the registry checks the
 * signature and declared sizes before any download and the digests after; then the kind's probe), and
 * released when no experiment names them.
 */
export class RegistryPinnedModels implements PinnedModels {
  private readonly loaded = new Map<string, ServingModel>();
  private readonly failed = new Map<string, string>();
  private readonly loading = new Set<string>();
  private wanted = new Set<string>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly tenant: string,
    private readonly loaders: ModelLoaders,
    private readonly logger: Logger,
  ) {}

  get<K extends InProcessModel>(model: K, version: string): ArmModels[K] {
    const key = keyOf(model, version);
    const m = this.loaded.get(key);
    // Stored under its kind's key by `load`, from that kind's loader.
    if (m) return m as unknown as ArmModels[K];
    throw new ArmNotReadyError(this.failed.get(key) ?? `${model} ${version} is still loading`);
  }

  /** The pinned versions loaded now. */
  get versions(): Array<{ model: string; version: string }> {
    return [...this.loaded.keys()].map((k) => {
      const i = k.indexOf(':');
      return { model: k.slice(0, i), version: k.slice(i + 1) };
    });
  }

  /** Loads what `pins` names and is not loaded; releases what it no longer names. */
  sync(pins: ReadonlyArray<{ model: InProcessModel; version: string }>): void {
    this.wanted = new Set(pins.map((p) => keyOf(p.model, p.version)));
    for (const p of pins) {
      const key = keyOf(p.model, p.version);
      if (!this.loaded.has(key) && !this.loading.has(key)) void this.load(p.model, p.version);
    }
    for (const [key, m] of this.loaded)
      if (!this.wanted.has(key)) {
        this.loaded.delete(key);
        // Requests in flight hold their own reference; give them a moment before freeing the session.
        setTimeout(() => void m.release(), 5_000).unref();
      }
  }

  private async load<K extends InProcessModel>(model: K, version: string): Promise<void> {
    const key = keyOf(model, version);
    const loader = this.loaders[model] as ModelLoader<ServingModel>;
    this.loading.add(key);
    try {
      const meta = await this.registry.versionMeta(this.tenant, model, version);
      if (!meta) throw new ArmNotReadyError(`${model} ${version} is not in the model registry`);
      const served = await loader.load(await this.registry.load(meta));
      try {
        await loader.probe(served);
      } catch (err) {
        await served.release();
        throw err;
      }
      if (!this.wanted.has(key)) {
        await served.release();
        return;
      }
      this.loaded.set(key, served);
      this.failed.delete(key);
      this.logger.info('experiment model loaded', { model, version });
    } catch (err) {
      const reason = err instanceof Error ? `${model} ${version}: ${err.message}` : String(err);
      this.failed.set(key, reason);
      this.logger.warn('experiment model not loaded; its arm falls back', { model, version, err });
    } finally {
      this.loading.delete(key);
    }
  }
}

/**
 * Follows the experiment definitions in the KV bucket: the valid ones (of every tenant) are handed to
 * `onChange` (invalid ones are logged and skipped). Resolves once the current definitions arrived.
 */
export async function followExperiments(
  bucket: ExperimentBucket,
  logger: Logger,
  onChange: (experiments: readonly Experiment[]) => void,
): Promise<() => void> {
  return bucket.watch((all) => {
    const now = Date.now();
    const out: Experiment[] = [];
    for (const [key, s] of all) {
      try {
        out.push(revalidateExperiment(s.experiment, now));
      } catch (err) {
        logger.warn('experiment definition invalid; ignored', { key, err });
      }
    }
    onChange(out);
  }, logger);
}

/** The versions one tenant's running or scheduled experiments pin, of the kinds `kind` accepts. */
export function pinnedModels<K extends PinnableModel>(
  experiments: readonly Experiment[],
  tenant: string,
  now: number,
  kind: (model: string) => model is K,
): Array<{ model: K; version: string }> {
  const live = experiments.filter((e) => e.tenant === tenant && takesTraffic(e, now));
  return pinsOf(live).flatMap((p) => (kind(p.model) ? [{ model: p.model, version: p.version }] : []));
}
