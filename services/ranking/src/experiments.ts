import { InvalidArgumentError, rankingV1 } from '@aisle/contracts';
import { experimentFor, interleave, route, unitOf, type Experiment } from '@aisle/experiments';
import {
  checkLimit,
  RequestExpiredError,
  servedOf,
  type ArmRun,
  type ImpressionSink,
  type RankingResult,
  type RankRequest,
  type RecommendRequest,
  type SearchRequest,
  type SimilarItemsRequest,
  type Surface,
} from '@aisle/ranking-core';

/** The four ranking surfaces, as the gRPC adapter calls them (a `RankingPipeline` is one). */
export interface RankingSurfaces {
  recommend(req: RecommendRequest): Promise<RankingResult>;
  search(req: SearchRequest): Promise<RankingResult>;
  rank(req: RankRequest): Promise<RankingResult>;
  similarItems(req: SimilarItemsRequest): Promise<RankingResult>;
}

/** The pipeline of one arm: its ranker version (or none), rules; throws when it cannot be built (a pinned model missing). */
export interface ArmPipelines {
  pipelineFor(experiment: Experiment, arm: string): RankingSurfaces;
}

const PROTO_SURFACE: Record<Surface, rankingV1.Surface> = {
  recommend: rankingV1.Surface.SURFACE_RECOMMEND,
  search: rankingV1.Surface.SURFACE_SEARCH,
  rank: rankingV1.Surface.SURFACE_RANK,
  similar_items: rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
};

interface Asked {
  surface: Surface;
  userId: string;
  sessionId: string;
  query: string;
  limit: number;
}

type Call = (p: RankingSurfaces) => Promise<RankingResult>;

interface ArmOutcome {
  run: ArmRun;
  result: RankingResult | undefined;
}

/**
 * Ranking with experiments: each request goes to the running experiment of its surface, if any (see
 * `route`): an A/B unit is ranked by its arm's pipeline; an interleaved request by both arms', merged by
 * team draft. An arm that fails falls back to the production ranking (the user never sees the failure; the
 * guardrails do). Experiment responses are published with their exposure (arm, team per item, how each arm
 * ran); the rest go through the production pipeline, which publishes its own.
 */
export class ExperimentRouter implements RankingSurfaces {
  constructor(
    private readonly deps: {
      tenant: string;
      /** The production pipeline, which publishes its own impressions. */
      production: RankingSurfaces;
      /** The production configuration without impressions: the fallback inside experiments. */
      fallback: RankingSurfaces;
      arms: ArmPipelines;
      experiments: () => readonly Experiment[];
      impressions: ImpressionSink;
      newRequestId: () => string;
      clock?: () => number;
    },
  ) {}

  private now(): number {
    return this.deps.clock?.() ?? Date.now();
  }

  async recommend(req: RecommendRequest): Promise<RankingResult> {
    const limit = checkLimit(req.limit);
    return this.serve(
      { surface: 'recommend', userId: req.userId, sessionId: req.sessionId ?? '', query: '', limit },
      (p) => p.recommend(req),
    );
  }

  async search(req: SearchRequest): Promise<RankingResult> {
    const limit = checkLimit(req.limit);
    return this.serve(
      { surface: 'search', userId: req.userId, sessionId: req.sessionId ?? '', query: req.query.trim(), limit },
      (p) => p.search(req),
    );
  }

  async rank(req: RankRequest): Promise<RankingResult> {
    return this.serve(
      { surface: 'rank', userId: req.userId, sessionId: '', query: '', limit: req.itemIds.length },
      (p) => p.rank(req),
    );
  }

  async similarItems(req: SimilarItemsRequest): Promise<RankingResult> {
    const limit = checkLimit(req.limit);
    return this.serve({ surface: 'similar_items', userId: '', sessionId: '', query: '', limit }, (p) =>
      p.similarItems(req),
    );
  }

  /**
   * Runs one arm, timing it; a bad request is the caller's error and an expired one is stopped, anything
   * else is the arm's failure.
   */
  private async runArm(e: Experiment, arm: string, call: Call): Promise<ArmOutcome> {
    const started = this.now();
    try {
      const result = await call(this.deps.arms.pipelineFor(e, arm));
      return {
        run: { arm, latencyMs: this.now() - started, degraded: result.degraded, failed: false, error: '' },
        result,
      };
    } catch (err) {
      // A bad request is the caller's error; a request past its deadline is stopped, not run again.
      if (err instanceof InvalidArgumentError || err instanceof RequestExpiredError) throw err;
      const error = err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 500) : String(err);
      return { run: { arm, latencyMs: this.now() - started, degraded: false, failed: true, error }, result: undefined };
    }
  }

  private async serve(asked: Asked, call: Call): Promise<RankingResult> {
    const { tenant } = this.deps;
    const e = experimentFor(this.deps.experiments(), tenant, PROTO_SURFACE[asked.surface], this.now());
    const r = route(e, unitOf(asked.userId, asked.sessionId));
    if (r.kind === 'none') return call(this.deps.production);
    const who = {
      tenant,
      userId: asked.userId,
      sessionId: asked.sessionId,
      surface: asked.surface,
      query: asked.query,
    };

    if (r.kind === 'ab') {
      const { run, result } = await this.runArm(r.experiment, r.arm, call);
      const served = result ?? (await call(this.deps.fallback));
      const exposure = { experimentId: r.experiment.id, arm: r.arm, interleaved: false, runs: [run] };
      this.deps.impressions.served(servedOf(who, served, this.now(), { exposure }));
      return served;
    }

    const [a, b] = await Promise.all([this.runArm(r.experiment, r.a, call), this.runArm(r.experiment, r.b, call)]);
    const exposure = { experimentId: r.experiment.id, arm: '', interleaved: false, runs: [a.run, b.run] };
    if (!a.result || !b.result) {
      // One arm failed: the other (or production) answers alone; nothing is credited to either team.
      const served = a.result ?? b.result ?? (await call(this.deps.fallback));
      this.deps.impressions.served(servedOf(who, served, this.now(), { exposure }));
      return served;
    }
    const requestId = this.deps.newRequestId();
    const merged = interleave(
      r.experiment,
      requestId,
      { name: r.a, items: a.result.items },
      { name: r.b, items: b.result.items },
      asked.limit,
    );
    const served: RankingResult = {
      items: merged.map(({ team: _team, ...item }) => item),
      modelVersion: `${r.a}=${a.result.modelVersion};${r.b}=${b.result.modelVersion}`,
      degraded: a.result.degraded || b.result.degraded,
      degradedReasons: [...new Set([...a.result.degradedReasons, ...b.result.degradedReasons])],
      requestId,
    };
    this.deps.impressions.served(
      servedOf(who, served, this.now(), {
        exposure: { ...exposure, interleaved: true },
        teams: merged.map((m) => m.team),
      }),
    );
    return served;
  }
}
