import { rankingV1 } from '@aisle/contracts';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import type { Filters, RankingResult, RankingService } from './ranking.service';

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
    items: r.items.map((i) => ({
      itemId: i.itemId,
      score: i.score,
      reasons: i.reasons,
      sources: i.sources,
      features: i.features,
    })),
    modelVersion: r.modelVersion,
    degraded: r.degraded,
    requestId: r.requestId,
    degradedReasons: r.degradedReasons,
  };
}

export function rankingGrpcService(
  service: RankingService,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const handlers: UnaryHandlers<Definition> = {
    recommend: async (req, ctx) =>
      response(
        await service.recommend({
          userId: req.userId,
          limit: req.limit,
          filters: filtersOf(req.filters),
          context: req.context,
          explain: req.explain,
          sessionItemIds: req.sessionItemIds,
          callerDeadline: ctx.deadline,
        }),
      ),
    search: async (req, ctx) =>
      response(
        await service.search({
          query: req.query,
          userId: req.userId,
          limit: req.limit,
          filters: filtersOf(req.filters),
          explain: req.explain,
          callerDeadline: ctx.deadline,
        }),
      ),
    rank: async (req, ctx) =>
      response(
        await service.rank({
          userId: req.userId,
          itemIds: req.itemIds,
          explain: req.explain,
          callerDeadline: ctx.deadline,
        }),
      ),
    similarItems: async (req, ctx) =>
      response(
        await service.similarItems({
          itemId: req.itemId,
          limit: req.limit,
          filters: filtersOf(req.filters),
          explain: req.explain,
          callerDeadline: ctx.deadline,
        }),
      ),
  };
  return {
    definition: rankingV1.RankingServiceService,
    implementation: bindUnaryService(rankingV1.RankingServiceService, handlers, instr),
  };
}
