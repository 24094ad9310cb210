import type { RequestContext } from './context';
import type { ServedEvent, ServedExposure, Surface } from './ports';
import type { RankingResult } from './requests';

/** Who asked what: the request side of an impression. */
export interface ServedRequest {
  tenant: string;
  userId: string;
  sessionId?: string | undefined;
  surface: Surface;
  query: string;
}

/**
 * The impression of one response, as published on `aisle.ranking.v1.served`; `teams` gives each item's
 * interleaving team, in the order of `result.items`.
 */
export function servedOf(
  req: ServedRequest,
  result: RankingResult,
  servedAt: number,
  experiment?: { exposure: ServedExposure; teams?: readonly string[] },
): ServedEvent {
  const teams = experiment?.teams;
  return {
    requestId: result.requestId,
    tenant: req.tenant,
    userId: req.userId,
    ...(req.sessionId ? { sessionId: req.sessionId } : {}),
    surface: req.surface,
    query: req.query,
    items: result.items.map((it, i) => ({
      itemId: it.itemId,
      position: i + 1,
      score: it.score,
      ...(teams ? { team: teams[i] ?? '' } : {}),
    })),
    modelVersion: result.modelVersion,
    degraded: result.degraded,
    servedAt,
    ...(experiment ? { experiment: experiment.exposure } : {}),
  };
}

/** The impression of a response the pipeline answered on its own (no experiment). */
export function servedEvent(ctx: RequestContext, result: RankingResult, servedAt: number): ServedEvent {
  return servedOf(ctx, result, servedAt);
}
