import { rankingV1 } from '@aisle/contracts';
import type { Filters, RankingResult } from '@aisle/ranking-core';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import { DEFAULT_TENANT } from '@aisle/contracts';
import type { RankingSurfaces } from './experiments';

type Definition = typeof rankingV1.RankingServiceService;

function filtersOf(f: rankingV1.Filters | undefined): Filters {
  return {
    categories: f?.categories ?? [],
    minPrice: f?.minPrice,
    maxPrice: f?.maxPrice,
    inStockOnly: f?.inStockOnly ?? false,
    excludePurchased: f?.excludePurchased ?? false,
    excludeItemIds: f?.excludeItemIds ?? [],
  };
}

function response(r: RankingResult) {
  return {
    items: r.items,
    modelVersion: r.modelVersion,
    degraded: r.degraded,
    requestId: r.requestId,
    degradedReasons: r.degradedReasons,
  };
}

/**
 * RankingService over gRPC: maps requests to their tenant's pipeline (an undeclared tenant is NOT_FOUND
 * before this runs) with the caller's deadline and cancellation.
 */
export function rankingGrpcService(
  pipelineOf: (tenant: string) => Promise<RankingSurfaces>,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const forRequest = (req: { tenant: string }) => pipelineOf(req.tenant || DEFAULT_TENANT);
  const handlers: UnaryHandlers<Definition> = {
    recommend: async (req, ctx) =>
      response(
        await (
          await forRequest(req)
        ).recommend({
          userId: req.userId,
          limit: req.limit,
          filters: filtersOf(req.filters),
          context: req.context,
          explain: req.explain,
          sessionItemIds: req.sessionItemIds,
          sessionId: req.sessionId ?? '',
          callerDeadline: ctx.deadline,
          signal: () => ctx.signal,
        }),
      ),
    search: async (req, ctx) =>
      response(
        await (
          await forRequest(req)
        ).search({
          query: req.query,
          userId: req.userId,
          sessionId: req.sessionId ?? '',
          limit: req.limit,
          filters: filtersOf(req.filters),
          explain: req.explain,
          callerDeadline: ctx.deadline,
          signal: () => ctx.signal,
        }),
      ),
    rank: async (req, ctx) =>
      response(
        await (
          await forRequest(req)
        ).rank({
          userId: req.userId,
          itemIds: req.itemIds,
          explain: req.explain,
          callerDeadline: ctx.deadline,
          signal: () => ctx.signal,
        }),
      ),
    similarItems: async (req, ctx) =>
      response(
        await (
          await forRequest(req)
        ).similarItems({
          itemId: req.itemId,
          limit: req.limit,
          filters: filtersOf(req.filters),
          explain: req.explain,
          callerDeadline: ctx.deadline,
          signal: () => ctx.signal,
        }),
      ),
  };
  return {
    definition: rankingV1.RankingServiceService,
    implementation: bindUnaryService(rankingV1.RankingServiceService, handlers, instr),
  };
}
