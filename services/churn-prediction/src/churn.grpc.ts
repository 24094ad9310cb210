import { churnV1, DEFAULT_TENANT, FailedPreconditionError } from '@aisle/contracts';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import { NoModelError, type ChurnService, type ScoreRecord } from './churn.service';

type Definition = typeof churnV1.ChurnServiceService;

export const BANDS: Record<ScoreRecord['band'], churnV1.RiskBand> = {
  low: churnV1.RiskBand.RISK_BAND_LOW,
  medium: churnV1.RiskBand.RISK_BAND_MEDIUM,
  high: churnV1.RiskBand.RISK_BAND_HIGH,
};

export function toProto(r: ScoreRecord & { known?: boolean }): churnV1.ChurnScore {
  return {
    userId: r.userId,
    known: r.known ?? true,
    risk: r.risk,
    band: r.known === false ? churnV1.RiskBand.RISK_BAND_UNSPECIFIED : BANDS[r.band],
    topFactors: r.factors,
    scoredAt: r.scoredAt ? new Date(r.scoredAt) : undefined,
    modelVersion: r.modelVersion,
  };
}

/** ChurnService over gRPC: each request answered by its tenant's scorer (undeclared: NOT_FOUND before this). */
export function churnGrpcService(
  serviceOf: (tenant: string) => Promise<ChurnService>,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const handlers: UnaryHandlers<Definition> = {
    predict: async (req, ctx) => {
      const service = await serviceOf(req.tenant || DEFAULT_TENANT);
      try {
        return {
          scores: (
            await service.predict(req.userIds, {
              ...(ctx.deadline !== undefined ? { deadline: ctx.deadline } : {}),
              version: req.modelVersion,
            })
          ).map(toProto),
        };
      } catch (err) {
        if (err instanceof NoModelError) throw new FailedPreconditionError(err.message);
        throw err;
      }
    },
    listAtRisk: async (req) => {
      const service = await serviceOf(req.tenant || DEFAULT_TENANT);
      const r = await service.listAtRisk(req.minRisk, req.pageSize, req.pageToken);
      return { scores: r.scores.map(toProto), nextPageToken: r.nextPageToken };
    },
  };
  return {
    definition: churnV1.ChurnServiceService,
    implementation: bindUnaryService(churnV1.ChurnServiceService, handlers, instr),
  };
}
