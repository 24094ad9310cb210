import { featureV1 } from '@aisle/contracts';
import {
  bindUnaryService,
  grpc,
  isGrpcError,
  createMetricsRegistry,
  memoryLogger,
  trace,
  type GrpcInstrumentation,
  type UnaryHandlers,
} from '../src';

type Definition = typeof featureV1.FeatureServiceService;

/** FeatureService answering empty results, with some handlers replaced, bound as the runtime binds services. */
export function fakeFeatureService(
  overrides: Partial<UnaryHandlers<Definition>> = {},
  instr: Pick<GrpcInstrumentation, 'tenants' | 'callers'> = {},
): {
  definition: Definition;
  implementation: grpc.UntypedServiceImplementation;
} {
  const handlers: UnaryHandlers<Definition> = {
    getUserFeatures: async () => ({ users: [], asOf: undefined }),
    getItemFeatures: async () => ({ items: [], asOf: undefined }),
    listPopularItems: async () => ({ items: [], asOf: undefined }),
    listUsers: async () => ({ userIds: [], nextPageToken: '' }),
    getUserContext: async () => ({ user: undefined, coVisits: [], asOf: undefined }),
    listItemStats: async () => ({ items: [], nextPageToken: '', asOf: undefined }),
    ...overrides,
  };
  return {
    definition: featureV1.FeatureServiceService,
    implementation: bindUnaryService(featureV1.FeatureServiceService, handlers, {
      logger: memoryLogger(),
      tracer: trace.getTracer('test'),
      registry: createMetricsRegistry('test', { defaultMetrics: false }),
      ...instr,
    }),
  };
}

/** A call's outcome as text: `OK`, or the status name and details (`PERMISSION_DENIED: ...`). */
export function outcomeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: unknown) => (isGrpcError(e) ? `${grpc.status[e.code]}: ${e.details}` : String(e)),
  );
}
