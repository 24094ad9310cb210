/** Admission control in the gRPC server: bounded concurrency and queue per RPC, shedding, expired calls never run. */
import { DeadlineExceededError, featureV1 } from '@aisle/contracts';
import {
  bindUnaryService,
  createGrpcClient,
  createMetricsRegistry,
  grpc,
  isGrpcError,
  memoryLogger,
  RETRY_PUSHBACK_KEY,
  startGrpcServer,
  trace,
  type RunningGrpcServer,
} from '../src';

const registry = createMetricsRegistry('test', { defaultMetrics: false });
let server: RunningGrpcServer;
let client: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;
const started: string[] = [];
const gates: Array<() => void> = [];

beforeAll(async () => {
  const impl = bindUnaryService(
    featureV1.FeatureServiceService,
    {
      getUserFeatures: async (req) => {
        started.push(req.userIds[0] ?? '');
        await new Promise<void>((resolve) => gates.push(resolve));
        return { users: [], asOf: undefined };
      },
      getItemFeatures: async () => ({ items: [], asOf: undefined }),
      // Work that outlasts its deadline: answered anyway (late), or stopped between stages (not answered).
      listPopularItems: async (req, ctx) => {
        await new Promise((r) => setTimeout(r, Math.max(0, (ctx.deadline ?? 0) - Date.now() + 20)));
        if (req.category === 'stop') throw new DeadlineExceededError('the deadline passed before scoring');
        return { items: [], asOf: undefined };
      },
      listUsers: async () => ({ userIds: [], nextPageToken: '' }),
      getUserContext: async () => ({ user: undefined, coVisits: [], asOf: undefined }),
      listItemStats: async () => ({ items: [], nextPageToken: '', asOf: undefined }),
    },
    { logger: memoryLogger(), tracer: trace.getTracer('test'), registry, admission: { maxConcurrent: 2, maxQueue: 2 } },
  );
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services: [{ definition: featureV1.FeatureServiceService, implementation: impl }],
  });
  client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${server.port}`, { deadlineMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(0);
});

const call = (id: string, deadlineMs = 10_000) =>
  client.getUserFeatures({ tenant: '', userIds: [id], recentLimit: 0 }, { deadlineMs }).then(
    () => 'OK',
    (err: unknown) => err,
  );

async function shedCount(reason: string, method = 'GetUserFeatures'): Promise<number> {
  const m = (await registry.getSingleMetric('aisle_grpc_server_shed_total')?.get())?.values.find(
    (v) => v.labels['method'] === method && v.labels['reason'] === reason,
  );
  return m?.value ?? 0;
}

async function lateCount(method: string): Promise<number> {
  const m = (await registry.getSingleMetric('aisle_grpc_server_late_responses_total')?.get())?.values.find(
    (v) => v.labels['method'] === method,
  );
  return m?.value ?? 0;
}

async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
}

test('beyond the slots and the queue a call is refused at once with a retry hint; an expired one never runs', async () => {
  const running = [call('a'), call('b')];
  await until(() => started.length === 2);
  // One connection: the server sees c, d and e in that order. d's deadline is long enough that it is
  // still waiting when e arrives, even on a busy machine.
  const queued = call('c');
  const expiring = call('d', 1000);
  const t0 = performance.now();
  const refused = await call('e');
  expect(performance.now() - t0).toBeLessThan(1000);
  expect(isGrpcError(refused) && refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  const hint = isGrpcError(refused) ? Number(refused.metadata.get(RETRY_PUSHBACK_KEY)[0]) : NaN;
  expect(hint).toBeGreaterThanOrEqual(5);
  const expired = await expiring;
  expect(isGrpcError(expired) && expired.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  // The server's deadline for it runs from when the server got it (later than the client's, on a busy
  // machine): wait until the server has dropped it too, then free the slots.
  await until(async () => (await shedCount('expired')) === 1);
  // Free the slots: the queued call runs; the expired one never did.
  gates.splice(0).forEach((g) => g());
  await until(() => started.length === 3);
  gates.splice(0).forEach((g) => g());
  expect(await Promise.all([...running, queued])).toEqual(['OK', 'OK', 'OK']);
  expect(started).toEqual(['a', 'b', 'c']);
  expect([await shedCount('overloaded'), await shedCount('expired')]).toEqual([1, 1]);
});

test('work past its deadline: an answer is counted late; a call stopped between stages is counted stopped, not late', async () => {
  const popular = (category: string) =>
    client.listPopularItems({ tenant: '', category, limit: 1 }, { deadlineMs: 100 }).then(
      () => 'OK',
      (err: unknown) => (isGrpcError(err) ? err.code : err),
    );
  expect(await popular('')).toBe(grpc.status.DEADLINE_EXCEEDED);
  await until(async () => (await lateCount('ListPopularItems')) === 1);
  expect(await popular('stop')).toBe(grpc.status.DEADLINE_EXCEEDED);
  await until(async () => (await shedCount('stopped', 'ListPopularItems')) === 1);
  expect([await lateCount('ListPopularItems'), await shedCount('stopped', 'ListPopularItems')]).toEqual([1, 1]);
});
