import { featureV1 } from '@aisle/contracts';
import { createGrpcClient, grpc, isGrpcError, startGrpcServer, type RunningGrpcServer } from '../src';
import { fakeFeatureService } from './fake-feature';

let server: RunningGrpcServer;
const tenantsSeen: string[] = [];
let client: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;

beforeAll(async () => {
  const service = fakeFeatureService({
    getUserFeatures: async (req) => ({
      users: req.userIds.map((userId) => featureV1.UserFeatures.fromPartial({ userId })),
      asOf: undefined,
    }),
    listPopularItems: async (req) => {
      tenantsSeen.push(req.tenant);
      return { items: [], asOf: undefined };
    },
  });
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    maxReceiveMessageBytes: 4096,
    services: [service],
  });
  server.setServing(true);
  client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${server.port}`, { deadlineMs: 3000 });
});

afterAll(async () => {
  client.close();
  await server.shutdown(1000);
});

test('requests above the size limit get RESOURCE_EXHAUSTED; smaller ones are served', async () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `user-${String(i).padStart(6, '0')}`);
  const small = await client.getUserFeatures({ tenant: '', userIds: ids(100), recentLimit: 0 });
  expect(small.users).toHaveLength(100);
  const err: unknown = await client
    .getUserFeatures({ tenant: '', userIds: ids(1000), recentLimit: 0 })
    .catch((e: unknown) => e);
  expect(isGrpcError(err) && err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
});

test('a malformed or oversized tenant is refused before any handler runs', async () => {
  const codeOf = (tenant: string) =>
    client.listPopularItems({ tenant, category: '', limit: 1 }).then(
      () => 'OK',
      (e: unknown) => (isGrpcError(e) ? `${grpc.status[e.code]}: ${e.details}` : String(e)),
    );
  const rule = 'tenant: must be 1-64 letters, digits, _ . - (starting with a letter or digit)';
  expect(await codeOf('x'.repeat(65))).toBe(`INVALID_ARGUMENT: ${rule}`);
  expect(await codeOf('shop\nother')).toBe(`INVALID_ARGUMENT: ${rule}`);
  expect(await codeOf('../default')).toBe(`INVALID_ARGUMENT: ${rule}`);
  expect(await codeOf('shop-1.eu_west')).toBe('OK');
  expect(await codeOf('')).toBe('OK');
  expect(tenantsSeen).toEqual(['shop-1.eu_west', '']);
});
