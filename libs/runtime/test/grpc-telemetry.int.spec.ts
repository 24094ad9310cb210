import { featureV1, InvalidArgumentError, UnavailableError } from '@aisle/contracts';
import { healthCheck, startNatsServer } from '@aisle/testkit';
import { connect } from '@nats-io/transport-node';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  bindUnaryService,
  context,
  createGrpcClient,
  createMetricsRegistry,
  ensureStreams,
  extractTraceContext,
  grpc,
  initTelemetry,
  isGrpcError,
  jetStreamOf,
  memoryLogger,
  AsyncJetStreamPublisher,
  startGrpcServer,
  trace,
  withSpan,
  type RunningGrpcServer,
  type Telemetry,
} from '../src';

const exporter = new InMemorySpanExporter();
let telemetry: Telemetry;
let server: RunningGrpcServer;
let client: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;
let serverTraceIds: string[] = [];

beforeAll(async () => {
  telemetry = initTelemetry({ serviceName: 'test', exporter });
  const logger = memoryLogger();
  const impl = bindUnaryService(
    featureV1.FeatureServiceService,
    {
      getUserFeatures: async (req) => {
        serverTraceIds.push(trace.getActiveSpan()?.spanContext().traceId ?? '');
        if (req.userIds.length === 0) throw new InvalidArgumentError('user_ids', 'at least one id required');
        if (req.userIds[0] === 'down') throw new UnavailableError('store unavailable');
        if (req.userIds[0] === 'bug') throw new Error('secret internal detail');
        return {
          users: req.userIds.map((userId) => ({ ...featureV1.UserFeatures.fromPartial({ userId }) })),
          asOf: undefined,
        };
      },
      getItemFeatures: async () => ({ items: [], asOf: undefined }),
      listPopularItems: async () => ({ items: [], asOf: undefined }),
      listUsers: async () => ({ userIds: [], nextPageToken: '' }),
      getUserContext: async () => ({ user: undefined, coVisits: [], asOf: undefined }),
      listItemStats: async () => ({ items: [], nextPageToken: '', asOf: undefined }),
    },
    { logger, tracer: telemetry.tracer, registry: createMetricsRegistry('test', { defaultMetrics: false }) },
  );
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services: [{ definition: featureV1.FeatureServiceService, implementation: impl }],
  });
  server.setServing(true);
  client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${server.port}`, { deadlineMs: 3000 });
});

afterAll(async () => {
  client.close();
  await server.shutdown(1000);
  await telemetry.shutdown();
});

const codeOf = async (p: Promise<unknown>) => {
  const err: unknown = await p.catch((e: unknown) => e);
  return isGrpcError(err) ? [err.code, err.details] : ['no error'];
};

test('domain errors map to status codes; unknown errors do not leak', async () => {
  expect(await codeOf(client.getUserFeatures({ tenant: '', userIds: [], recentLimit: 0 }))).toEqual([
    grpc.status.INVALID_ARGUMENT,
    'user_ids: at least one id required',
  ]);
  expect(await codeOf(client.getUserFeatures({ tenant: '', userIds: ['down'], recentLimit: 0 }))).toEqual([
    grpc.status.UNAVAILABLE,
    'store unavailable',
  ]);
  expect(await codeOf(client.getUserFeatures({ tenant: '', userIds: ['bug'], recentLimit: 0 }))).toEqual([
    grpc.status.INTERNAL,
    'internal error',
  ]);
});

test('traceparent flows client -> gRPC server and publisher -> NATS consumer', async () => {
  serverTraceIds = [];
  const traceId = await withSpan(telemetry.tracer, 'caller', {}, async (span) => {
    await client.getUserFeatures({ tenant: '', userIds: ['u1'], recentLimit: 0 });
    return span.spanContext().traceId;
  });
  expect(serverTraceIds).toEqual([traceId]);
  const serverSpan = exporter
    .getFinishedSpans()
    .find((s) => s.name === 'aisle.feature.v1.FeatureService/GetUserFeatures' && s.spanContext().traceId === traceId);
  expect(serverSpan?.attributes['rpc.method']).toBe('GetUserFeatures');

  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const { jsm } = await jetStreamOf(nc);
    const publisher = new AsyncJetStreamPublisher(nc);
    await ensureStreams(jsm, [{ name: 'T', subjects: ['t.>'], maxAgeMs: 0, duplicateWindowMs: 1000, description: '' }]);
    const published = await withSpan(telemetry.tracer, 'producer', {}, async (span) => {
      await publisher.publish('t.x', new Uint8Array([1]));
      return span.spanContext();
    });
    const msg = await jsm.streams.getMessage('T', { seq: 1 });
    const extracted = trace.getSpanContext(extractTraceContext(msg!.header));
    expect(extracted?.traceId).toBe(published.traceId);
    expect(extracted?.spanId).toBe(published.spanId);
    expect(trace.getSpanContext(extractTraceContext(undefined))).toBeUndefined();
    expect(context.active()).toBeDefined();
    await expect(publisher.publish('nobody.listens', new Uint8Array())).rejects.toThrow(
      'no stream listens on this subject',
    );
    const dup = await publisher.publish('t.x', new Uint8Array([2]), { msgId: 'same' });
    expect(await publisher.publish('t.x', new Uint8Array([2]), { msgId: 'same' })).toEqual({
      stream: 'T',
      seq: dup.seq,
      duplicate: true,
    });
    publisher.close();
  } finally {
    await nc.close();
    await nats.dispose();
  }
});

test('health reports NOT_SERVING after setServing(false)', async () => {
  expect(await healthCheck(`127.0.0.1:${server.port}`)).toBe('SERVING');
  server.setServing(false);
  expect(await healthCheck(`127.0.0.1:${server.port}`, 'aisle.feature.v1.FeatureService')).toBe('NOT_SERVING');
  server.setServing(true);
});
