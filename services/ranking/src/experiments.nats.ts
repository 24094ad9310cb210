import { isRunning, revalidateExperiment, type Experiment } from '@aisle/experiments';
import type { ExperimentBucket, Logger, ModelRegistry } from '@aisle/runtime';
import { ArmNotReadyError, type PinnedRankers } from './arm-pipelines';
import { loadRanker, probeRanker, type ServingRanker } from './ranker.ort';

type LoadedRanker = ServingRanker;

/**
 * Ranker versions pinned by experiment arms, loaded from the model registry (checked like an active
 * version: signature, sizes, digests; then probed) as soon as an experiment names them, and released when
 * no experiment does.
 */
export class RegistryPinnedRankers implements PinnedRankers {
  private readonly loaded = new Map<string, LoadedRanker>();
  private readonly failed = new Map<string, string>();
  private readonly loading = new Set<string>();
  private wanted = new Set<string>();

  constructor(
    private readonly registry: ModelRegistry,
    private readonly tenant: string,
    private readonly logger: Logger,
  ) {}

  get(version: string): LoadedRanker {
    const r = this.loaded.get(version);
    if (r) return r;
    throw new ArmNotReadyError(this.failed.get(version) ?? `ranker ${version} is still loading`);
  }

  get versions(): string[] {
    return [...this.loaded.keys()];
  }

  /** Loads what `versions` names and is not loaded; releases what it no longer names. */
  sync(versions: ReadonlySet<string>): void {
    this.wanted = new Set(versions);
    for (const v of versions) if (!this.loaded.has(v) && !this.loading.has(v)) void this.load(v);
    for (const [v, r] of this.loaded)
      if (!versions.has(v)) {
        this.loaded.delete(v);
        // Requests in flight hold their own reference; give them a moment before freeing the session.
        setTimeout(() => void r.release(), 5_000).unref();
      }
  }

  private async load(version: string): Promise<void> {
    this.loading.add(version);
    try {
      const meta = await this.registry.versionMeta(this.tenant, 'ranker', version);
      if (!meta) throw new ArmNotReadyError(`ranker ${version} is not in the model registry`);
      const artifact = await this.registry.load(meta);
      const ranker = await loadRanker(artifact);
      try {
        await probeRanker(ranker);
      } catch (err) {
        await ranker.release();
        throw err;
      }
      if (!this.wanted.has(version)) {
        await ranker.release();
        return;
      }
      this.loaded.set(version, ranker);
      this.failed.delete(version);
      this.logger.info('experiment ranker loaded', { version });
    } catch (err) {
      const reason = err instanceof Error ? `ranker ${version}: ${err.message}` : String(err);
      this.failed.set(version, reason);
      this.logger.warn('experiment ranker not loaded; its arm falls back', { version, err });
    } finally {
      this.loading.delete(version);
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

/** The ranker versions that one tenant's running or scheduled experiments pin. */
export function pinnedVersions(experiments: readonly Experiment[], tenant: string, now: number): Set<string> {
  const out = new Set<string>();
  for (const e of experiments) {
    if (e.tenant !== tenant) continue;
    if (!isRunning(e, now) && !(e.startTime && e.startTime.getTime() > now)) continue;
    for (const arm of e.arms) {
      const v = arm.models['ranker'];
      if (v) out.add(v);
    }
  }
  return out;
}
