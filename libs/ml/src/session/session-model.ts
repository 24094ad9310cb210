import type { SessionArtifact } from './session-artifact';
import type { SessionCase } from './sessions';
import { evaluateSessions, type SessionMetrics } from './session-eval';
import {
  Popularity,
  Repeats,
  SequentialRules,
  SessionBlend,
  SessionKnn,
  SessionRecommender,
  type RepeatConfig,
  type SequentialRulesConfig,
  type SessionKnnConfig,
  type SessionScorer,
} from './session-models';

/**
 * What a session model is, as data: the trainer selects it on validation sessions, stores it with the
 * training sessions, and the ranking service rebuilds the very same scorer from both.
 */
export interface SessionModelSpec {
  knn: SessionKnnConfig;
  rules: SequentialRulesConfig;
  repeats: RepeatConfig;
  /** Blend weights relative to the kNN part (1); 0 leaves a part out. */
  rulesWeight: number;
  repeatsWeight: number;
}

export const DEFAULT_SESSION_MODEL: SessionModelSpec = {
  knn: {
    neighbors: 100,
    sampleSize: 1000,
    positionDecay: 2,
    recencyDecay: 1,
    itemDecay: 3,
    itemDecayBefore: 3,
    idf: true,
  },
  rules: { steps: 10 },
  repeats: { positionDecay: 2 },
  rulesWeight: 0.15,
  repeatsWeight: 0.15,
};

export interface SessionModel {
  spec: SessionModelSpec;
  scorer: SessionScorer;
  popularity: Popularity;
  recommender: SessionRecommender;
}

/** Builds the scorer a spec describes over `sessions` (oldest first). */
export function buildSessionModel(
  spec: SessionModelSpec,
  sessions: readonly Int32Array[],
  numItems: number,
  parts: { knn?: SessionKnn; rules?: SequentialRules } = {},
): SessionModel {
  const popularity = new Popularity(sessions, numItems);
  const knn = parts.knn ?? new SessionKnn(sessions, numItems, spec.knn);
  const blend: Array<{ scorer: SessionScorer; weight: number }> = [{ scorer: knn, weight: 1 }];
  if (spec.rulesWeight > 0)
    blend.push({
      scorer: parts.rules ?? new SequentialRules(sessions, numItems, spec.rules),
      weight: spec.rulesWeight,
    });
  if (spec.repeatsWeight > 0) blend.push({ scorer: new Repeats(spec.repeats), weight: spec.repeatsWeight });
  const scorer = blend.length === 1 ? knn : new SessionBlend(blend, numItems);
  return { spec, scorer, popularity, recommender: new SessionRecommender(scorer, popularity, numItems) };
}

export interface SessionTrial {
  stage: string;
  spec: SessionModelSpec;
  validation: SessionMetrics;
  seconds: number;
}

/** The selection criterion on validation: P@20 + MRR@20 (both in percent). */
export function selectionScore(m: SessionMetrics): number {
  return m.p20 + m.mrr20;
}

/**
 * Chooses a session model on validation cases only: coordinate search over the kNN settings from the
 * defaults, then the rules' window, then the blend weights. Stops searching when `deadline` (epoch ms)
 * passes and keeps the best so far. Every trial is returned, so the result can say what was selected
 * on which split.
 */
export function tuneSessionModel(
  fit: readonly Int32Array[],
  cases: readonly SessionCase[],
  numItems: number,
  opts: { deadline: number; log?: (msg: string) => void; start?: SessionModelSpec },
): { best: SessionModelSpec; trials: SessionTrial[] } {
  const log = opts.log ?? (() => undefined);
  const trials: SessionTrial[] = [];
  const popularity = new Popularity(fit, numItems);
  const rulesCache = new Map<number, SequentialRules>();
  const rules = (steps: number) => {
    let r = rulesCache.get(steps);
    if (!r) rulesCache.set(steps, (r = new SequentialRules(fit, numItems, { steps })));
    return r;
  };
  let knnIndex: SessionKnn | undefined;
  const knn = (cfg: SessionKnnConfig) => {
    // The index does not depend on the settings: build it once and swap the settings in.
    knnIndex = knnIndex ? knnIndex.withConfig(cfg) : new SessionKnn(fit, numItems, cfg);
    return knnIndex;
  };
  const score = (stage: string, spec: SessionModelSpec): number => {
    const t0 = performance.now();
    const model = buildSessionModel(spec, fit, numItems, { knn: knn(spec.knn), rules: rules(spec.rules.steps) });
    const validation = evaluateSessions(new SessionRecommender(model.scorer, popularity, numItems), cases);
    const seconds = (performance.now() - t0) / 1000;
    trials.push({ stage, spec, validation, seconds });
    log(
      `validation ${stage}: P@20 ${validation.p20.toFixed(2)} MRR@20 ${validation.mrr20.toFixed(2)} (${seconds.toFixed(1)} s)`,
    );
    return selectionScore(validation);
  };
  let best = opts.start ?? DEFAULT_SESSION_MODEL;
  let bestScore = score('defaults', best);
  const tryAll = (stage: string, variants: SessionModelSpec[]) => {
    for (const v of variants) {
      if (Date.now() > opts.deadline) return;
      const s = score(stage, v);
      if (s > bestScore) {
        bestScore = s;
        best = v;
      }
    }
  };
  const knnAxes: Array<[keyof SessionKnnConfig, Array<number | boolean>]> = [
    ['positionDecay', [1, 4]],
    ['recencyDecay', [0, 0.5, 2]],
    ['itemDecay', [1.5, 6]],
    ['itemDecayBefore', [1.5, 6]],
    ['neighbors', [50, 200]],
    ['idf', [false]],
  ];
  for (const [key, values] of knnAxes) {
    const from = best;
    tryAll(
      `knn ${key}`,
      values.filter((v) => v !== from.knn[key]).map((v) => ({ ...from, knn: { ...from.knn, [key]: v } })),
    );
  }
  {
    const from = best;
    tryAll(
      'rules steps',
      [1, 3, 20].filter((s) => s !== from.rules.steps).map((steps) => ({ ...from, rules: { steps } })),
    );
  }
  {
    const from = best;
    const grid: SessionModelSpec[] = [];
    for (const rw of [0, 0.1, 0.15, 0.3])
      for (const pw of [0, 0.1, 0.15, 0.3])
        if (rw !== from.rulesWeight || pw !== from.repeatsWeight)
          grid.push({ ...from, rulesWeight: rw, repeatsWeight: pw });
    tryAll('blend weights', grid);
  }
  {
    const from = best;
    tryAll(
      'repeats decay',
      [1, 4].filter((p) => p !== from.repeats.positionDecay).map((p) => ({ ...from, repeats: { positionDecay: p } })),
    );
  }
  return { best, trials };
}

/**
 * A session model over external item ids: what the ranking service holds. Built from a registry
 * artifact (or straight from a selection), it answers "what comes next in this session".
 */
export class ServingSessionModel {
  private readonly index: Map<string, number>;
  private readonly model: SessionModel;

  constructor(readonly artifact: SessionArtifact) {
    this.index = new Map(artifact.itemIds.map((id, i) => [id, i]));
    this.model = buildSessionModel(artifact.spec, artifact.sessions, artifact.itemIds.length - 1);
  }

  /** The `k` items most likely to follow `sessionItemIds` (oldest first), best first, with scores. */
  recommend(sessionItemIds: readonly string[], k: number): Array<{ itemId: string; score: number }> {
    const prefix = Int32Array.from(sessionItemIds, (id) => this.index.get(id) ?? 0).filter((i) => i > 0);
    const { items, scores } = this.model.recommender.recommendScored(prefix, k);
    return items.map((i, n) => ({ itemId: this.artifact.itemIds[i] as string, score: scores[n] as number }));
  }
}
