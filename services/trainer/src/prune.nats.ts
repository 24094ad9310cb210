import { pinsOf, wasPromoted } from '@aisle/experiments';
import type { ExperimentBucket, Logger, ModelName, ModelRegistry } from '@aisle/runtime';

/**
 * Deletes old versions of a model after a publication: keeps the newest `keep`, the active one, and every
 * version that an experiment of the tenant pins and that was not promoted (running, scheduled, or stopped
 * without a promotion): an arm's version must load while its experiment runs, and Promote must find it
 * afterwards. When the definitions cannot be read nothing is deleted (the next publication tries again).
 */
export async function pruneVersions(
  registry: ModelRegistry,
  experiments: ExperimentBucket,
  opts: { tenant: string; model: ModelName; keep: number; logger: Logger },
): Promise<string[]> {
  let pinned: Set<string>;
  try {
    const defined = (await experiments.list(opts.tenant)).map((s) => s.experiment).filter((e) => !wasPromoted(e));
    pinned = new Set(pinsOf(defined).flatMap((p) => (p.model === opts.model ? [p.version] : [])));
  } catch (err) {
    opts.logger.warn('experiment definitions not readable; old model versions kept', { model: opts.model, err });
    return [];
  }
  return registry.prune(opts.tenant, opts.model, opts.keep, pinned);
}
