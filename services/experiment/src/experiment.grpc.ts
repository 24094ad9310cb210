import { experimentV1 } from '@aisle/contracts';
import { bindUnaryService, type grpc, type GrpcInstrumentation, type UnaryHandlers } from '@aisle/runtime';
import type { ExperimentService } from './experiment.service';

type Definition = typeof experimentV1.ExperimentServiceService;

export function experimentGrpcService(
  service: ExperimentService,
  instr: GrpcInstrumentation,
): { definition: Definition; implementation: grpc.UntypedServiceImplementation } {
  const handlers: UnaryHandlers<Definition> = {
    create: async (req) => ({ experiment: await service.create(req.experiment) }),
    get: async (req) => ({ experiment: await service.get(req.tenant, req.id) }),
    list: async (req) => ({ experiments: await service.list(req.tenant) }),
    stop: async (req) => ({ experiment: await service.stop(req.tenant, req.id, req.reason) }),
    getResults: async (req) => ({ result: await service.getResults(req.tenant, req.id) }),
    promote: async (req) => service.promote(req.tenant, req.id, req.arm, req.force),
  };
  return {
    definition: experimentV1.ExperimentServiceService,
    implementation: bindUnaryService(experimentV1.ExperimentServiceService, handlers, instr),
  };
}
