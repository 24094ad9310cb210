import type { RequestContext } from './context';
import type { ServedEvent } from './ports';
import type { RankingResult } from './requests';

/** The impression of one response, as published on `aisle.ranking.v1.served`. */
export function servedEvent(ctx: RequestContext, result: RankingResult, servedAt: number): ServedEvent {
  return {
    requestId: result.requestId,
    tenant: ctx.tenant,
    userId: ctx.userId,
    surface: ctx.surface,
    query: ctx.query,
    items: result.items.map((it, i) => ({ itemId: it.itemId, position: i + 1, score: it.score })),
    modelVersion: result.modelVersion,
    degraded: result.degraded,
    servedAt,
  };
}
