/**
 * Issue #18: under mTLS any certificate from the CA used to be accepted for every method. With an
 * allow-list, each method answers only the client identities it names (certificate CN or DNS SAN).
 */
import { featureV1 } from '@aisle/contracts';
import { generateTestPki, type TestPki } from '@aisle/testkit';
import {
  clientCredentials,
  createGrpcClient,
  parseClientAllowList,
  startGrpcServer,
  type RunningGrpcServer,
} from '../src';
import { fakeFeatureService, outcomeOf } from './fake-feature';

let pki: TestPki;
let server: RunningGrpcServer;
const callers: string[][] = [];

beforeAll(async () => {
  pki = generateTestPki();
  const service = fakeFeatureService({
    getUserFeatures: async (_req, ctx) => {
      callers.push([...ctx.clientIdentities]);
      return { users: [], asOf: undefined };
    },
  });
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile },
    allowedClients: parseClientAllowList('*=ranking.aisle.svc; ListUsers=churn-prediction'),
    services: [service],
  });
  server.setServing(true);
});

afterAll(async () => {
  await server?.shutdown(1000);
});

async function outcomes(identity: { certFile: string; keyFile: string }) {
  const client = createGrpcClient(featureV1.FeatureServiceService, `localhost:${server.port}`, {
    deadlineMs: 5000,
    credentials: clientCredentials({ caFile: pki.caFile, ...identity }),
  });
  const code = outcomeOf;
  try {
    return {
      getUserFeatures: await code(client.getUserFeatures({ tenant: '', userIds: ['u'], recentLimit: 0 })),
      listUsers: await code(client.listUsers({ tenant: '', pageSize: 1, pageToken: '' })),
    };
  } finally {
    client.close();
  }
}

test('each method answers only the client identities its rule names', async () => {
  expect(await outcomes(pki.issueClient('ranking'))).toEqual({
    getUserFeatures: 'OK',
    listUsers: 'PERMISSION_DENIED: client ranking may not call ListUsers',
  });
  expect(await outcomes(pki.issueClient('churn-prediction'))).toEqual({
    getUserFeatures: 'PERMISSION_DENIED: client churn-prediction may not call GetUserFeatures',
    listUsers: 'OK',
  });
  // A valid certificate from the same CA, but nobody this server serves.
  expect(await outcomes({ certFile: pki.clientCertFile, keyFile: pki.clientKeyFile })).toEqual({
    getUserFeatures: 'PERMISSION_DENIED: client aisle-client may not call GetUserFeatures',
    listUsers: 'PERMISSION_DENIED: client aisle-client may not call ListUsers',
  });
  // Handlers see who called (for binding tenants to callers).
  expect(callers).toEqual([['ranking', 'ranking.aisle.svc']]);
});

test('allow-lists parse strictly and need mTLS', async () => {
  expect([...parseClientAllowList('a, b').rules]).toEqual([['*', new Set(['a', 'b'])]]);
  expect(() => parseClientAllowList('getUserFeatures=a')).toThrow('is not an RPC name');
  expect(() => parseClientAllowList('ListUsers=')).toThrow('no client identities for ListUsers');
  await expect(
    startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      allowedClients: parseClientAllowList('ranking'),
      services: [],
    }),
  ).rejects.toThrow('a client allow-list needs mTLS');
});
