import {
  IN_PROCESS_MODELS,
  REMOTE_MODELS,
  type Experiment,
  type InProcessModel,
  type RemoteModel,
} from '@aisle/experiments';
import type { RankerPort, RetentionRule, SearchModelPort, SessionModelPort } from '@aisle/ranking-core';
import type { ArmPipelines, RankingSurfaces } from './experiments';

/** An arm cannot rank (its pinned model is missing, still loading, or refused): the request falls back. */
export class ArmNotReadyError extends Error {
  override readonly name = 'ArmNotReadyError';
}

/** Versions an arm pins of the kinds other services serve: named on each of the arm's calls to them. */
export type RemotePins = Partial<Record<RemoteModel, string>>;

/** What makes an arm's pipeline differ from production. */
export interface ArmSettings {
  maxPerCategory: number | undefined;
  retention: RetentionRule | undefined;
  remote: RemotePins;
}

/** The models ranking serves in-process, by the kind an arm pins them under, as the pipeline takes them. */
export interface ArmModels {
  ranker: RankerPort;
  search_ranker: SearchModelPort;
  session: SessionModelPort;
}

/** A pipeline over the production ports with an arm's settings (models set afterwards). */
export type ArmPipeline = RankingSurfaces & {
  setRanker(ranker: RankerPort | undefined): void;
  setSearchModel(model: SearchModelPort | undefined): void;
  setSessionModel(model: SessionModelPort | undefined): void;
};

export type PipelineFactory = (settings: ArmSettings) => ArmPipeline;

/** How each kind is put into a pipeline. */
const SET: { [K in InProcessModel]: (p: ArmPipeline, model: ArmModels[K] | undefined) => void } = {
  ranker: (p, m) => p.setRanker(m),
  search_ranker: (p, m) => p.setSearchModel(m),
  session: (p, m) => p.setSessionModel(m),
};

function put<K extends InProcessModel>(p: ArmPipeline, kind: K, model: ArmModels[K] | undefined): void {
  SET[kind](p, model);
}

/** Model versions pinned by arms, loaded ahead of their requests. */
export interface PinnedModels {
  /** The loaded version; throws ArmNotReadyError saying why it is not available. */
  get<K extends InProcessModel>(model: K, version: string): ArmModels[K];
}

interface Entry {
  pipeline: ArmPipeline;
  /** Kinds this arm serves production's version of (following every hot swap): neither pinned nor disabled. */
  follows: ReadonlySet<InProcessModel>;
  pins: ReadonlyArray<[InProcessModel, string]>;
}

/**
 * The pipelines of the arms of running experiments, built on first use and kept while the experiment is
 * defined. For each kind ranking serves in-process (ranker, search model, session model) an arm serves its
 * pinned version, or the active one (following every hot swap); the ranker may also be disabled (the
 * heuristic). The versions it pins of kinds other services serve (sasrec, text_encoder, churn) go to the
 * factory, whose ports name them on every call. Each arm has its own rule settings.
 */
export class ArmPipelineCache implements ArmPipelines {
  private readonly entries = new Map<string, Entry>();
  private readonly active: { [K in InProcessModel]?: ArmModels[K] | undefined } = {};

  constructor(
    private readonly make: PipelineFactory,
    private readonly pinned: PinnedModels,
  ) {}

  /** Production's version of a kind changed: arms that follow it switch too. */
  setActive<K extends InProcessModel>(model: K, serving: ArmModels[K] | undefined): void {
    this.active[model] = serving;
    for (const e of this.entries.values()) if (e.follows.has(model)) put(e.pipeline, model, serving);
  }

  pipelineFor(experiment: Experiment, armName: string): RankingSurfaces {
    const arm = experiment.arms.find((a) => a.name === armName);
    if (!arm) throw new ArmNotReadyError(`experiment '${experiment.id}' has no arm '${armName}'`);
    const key = `${experiment.tenant}/${experiment.id}/${armName}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const rules = arm.rules;
      const pins = IN_PROCESS_MODELS.flatMap((m): Array<[InProcessModel, string]> => {
        const v = arm.models[m];
        return v ? [[m, v]] : [];
      });
      const follows = new Set(
        IN_PROCESS_MODELS.filter((m) => !arm.models[m] && !(m === 'ranker' && arm.rankerDisabled)),
      );
      entry = {
        pipeline: this.make({
          remote: Object.fromEntries(REMOTE_MODELS.flatMap((m) => (arm.models[m] ? [[m, arm.models[m]]] : []))),
          maxPerCategory: rules?.maxPerCategory || undefined,
          retention:
            rules && rules.retentionBoost > 0
              ? { boost: rules.retentionBoost, threshold: rules.churnRiskThreshold }
              : undefined,
        }),
        follows,
        pins,
      };
      for (const m of follows) put(entry.pipeline, m, this.active[m]);
      this.entries.set(key, entry);
    }
    // Every pin must be loaded, or the arm cannot rank (ArmNotReadyError: the request falls back).
    const loaded = entry.pins.map(([m, v]) => [m, this.pinned.get(m, v)] as const);
    for (const [m, model] of loaded) put(entry.pipeline, m, model);
    return entry.pipeline;
  }

  /** Forgets the pipelines of experiments no longer defined. */
  retain(experiments: readonly Experiment[]): void {
    const keep = new Set(experiments.flatMap((e) => e.arms.map((a) => `${e.tenant}/${e.id}/${a.name}`)));
    for (const key of this.entries.keys()) if (!keep.has(key)) this.entries.delete(key);
  }
}
