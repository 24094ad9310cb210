import type { Experiment } from '@aisle/experiments';
import type { RankerPort, RetentionRule, SearchModelPort, SessionModelPort } from '@aisle/ranking-core';
import type { ArmPipelines, RankingSurfaces } from './experiments';

/** An arm cannot rank (its pinned model is missing, still loading, or refused): the request falls back. */
export class ArmNotReadyError extends Error {
  override readonly name = 'ArmNotReadyError';
}

/** What makes an arm's pipeline differ from production. */
export interface ArmSettings {
  maxPerCategory: number | undefined;
  retention: RetentionRule | undefined;
}

/** A pipeline over the production ports with an arm's settings (ranker set afterwards). */
export type PipelineFactory = (settings: ArmSettings) => RankingSurfaces & {
  setRanker(ranker: RankerPort | undefined): void;
  setSearchModel(model: SearchModelPort | undefined): void;
  setSessionModel(model: SessionModelPort | undefined): void;
};

/** Ranker versions pinned by arms, loaded ahead of their requests. */
export interface PinnedRankers {
  /** The loaded version; throws ArmNotReadyError saying why it is not available. */
  get(version: string): RankerPort;
}

interface Entry {
  pipeline: ReturnType<PipelineFactory>;
  /** Serves whatever ranker production serves (no pin, ranker not disabled). */
  followsActive: boolean;
}

/**
 * The pipelines of the arms of running experiments, built on first use and kept while the experiment is
 * defined: an arm serves its pinned ranker version, no ranker (the heuristic), or the active one (following
 * every hot swap), with its own rule settings.
 */
export class ArmPipelineCache implements ArmPipelines {
  private readonly entries = new Map<string, Entry>();
  private active: RankerPort | undefined;
  private search: SearchModelPort | undefined;
  private session: SessionModelPort | undefined;

  constructor(
    private readonly make: PipelineFactory,
    private readonly pinned: PinnedRankers,
  ) {}

  /** Production's ranker changed: arms that follow it switch too. */
  setActiveRanker(ranker: RankerPort | undefined): void {
    this.active = ranker;
    for (const e of this.entries.values()) if (e.followsActive) e.pipeline.setRanker(ranker);
  }

  /** Production's search model changed: every arm searches with it (arms pin rankers, not search models). */
  setSearchModel(model: SearchModelPort | undefined): void {
    this.search = model;
    for (const e of this.entries.values()) e.pipeline.setSearchModel(model);
  }

  /** Production's session model changed: every arm orders anonymous sessions with it. */
  setSessionModel(model: SessionModelPort | undefined): void {
    this.session = model;
    for (const e of this.entries.values()) e.pipeline.setSessionModel(model);
  }

  pipelineFor(experiment: Experiment, armName: string): RankingSurfaces {
    const arm = experiment.arms.find((a) => a.name === armName);
    if (!arm) throw new ArmNotReadyError(`experiment '${experiment.id}' has no arm '${armName}'`);
    const pin = arm.models['ranker'];
    const key = `${experiment.tenant}/${experiment.id}/${armName}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const rules = arm.rules;
      entry = {
        pipeline: this.make({
          maxPerCategory: rules?.maxPerCategory || undefined,
          retention:
            rules && rules.retentionBoost > 0
              ? { boost: rules.retentionBoost, threshold: rules.churnRiskThreshold }
              : undefined,
        }),
        followsActive: !pin && !arm.rankerDisabled,
      };
      if (entry.followsActive) entry.pipeline.setRanker(this.active);
      entry.pipeline.setSearchModel(this.search);
      entry.pipeline.setSessionModel(this.session);
      this.entries.set(key, entry);
    }
    if (pin) entry.pipeline.setRanker(this.pinned.get(pin));
    return entry.pipeline;
  }

  /** Forgets the pipelines of experiments no longer defined. */
  retain(experiments: readonly Experiment[]): void {
    const keep = new Set(experiments.flatMap((e) => e.arms.map((a) => `${e.tenant}/${e.id}/${a.name}`)));
    for (const key of this.entries.keys()) if (!keep.has(key)) this.entries.delete(key);
  }
}
