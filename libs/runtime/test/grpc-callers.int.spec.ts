/**
 * Issue #13: data APIs need a caller identity outside local development. Each caller is recognized by
 * a bearer token (its SHA-256 in the callers file) or its mTLS certificate, and may use only the RPCs
 * and tenants it is granted: unknown callers get UNAUTHENTICATED, known ones outside their grant
 * PERMISSION_DENIED (a shop backend may read its own shop's user features, but not ListUsers, and not
 * for another shop).
 */
import { featureV1 } from '@aisle/contracts';
import { generateTestPki, type TestPki } from '@aisle/testkit';
import { createHash } from 'node:crypto';
import {
  clientCredentials,
  createGrpcClient,
  grpc,
  parseCallers,
  parseTenantList,
  startGrpcServer,
  TenantDirectory,
  type RunningGrpcServer,
} from '../src';
import { fakeFeatureService, outcomeOf } from './fake-feature';

const TOKEN = 'shop-a-backend-secret-token';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let pki: TestPki;
let server: RunningGrpcServer;
const seen: string[] = [];

beforeAll(async () => {
  pki = generateTestPki();
  const callers = parseCallers(
    JSON.stringify({
      callers: [
        { name: 'shop-a-backend', token_sha256: sha(TOKEN), tenants: ['shop-a'], methods: ['GetUserFeatures'] },
        { name: 'churn', identities: ['churn-prediction'], tenants: ['*'], methods: ['ListUsers', 'GetUserFeatures'] },
      ],
    }),
  );
  const service = fakeFeatureService(
    {
      getUserFeatures: async (_req, ctx) => {
        seen.push(ctx.caller?.name ?? '(none)');
        return { users: [], asOf: undefined };
      },
    },
    { callers, tenants: new TenantDirectory(parseTenantList('shop-a,shop-b')) },
  );
  server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    // mTLS: every connection has a certificate from the CA; the callers file decides what each may do.
    tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile },
    services: [service],
  });
  server.setServing(true);
});

afterAll(async () => {
  await server?.shutdown(1000);
});

/** Calls with a certificate (by default one the callers file does not name) and maybe a bearer token. */
async function outcomes(opts: { token?: string; identity?: { certFile: string; keyFile: string } }) {
  const identity = opts.identity ?? { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
  const client = createGrpcClient(featureV1.FeatureServiceService, `localhost:${server.port}`, {
    deadlineMs: 5000,
    credentials: clientCredentials({ caFile: pki.caFile, ...identity }),
  });
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  const code = outcomeOf;
  try {
    return {
      ownShop: await code(client.getUserFeatures({ tenant: 'shop-a', userIds: ['u'], recentLimit: 0 }, { metadata })),
      otherShop: await code(client.getUserFeatures({ tenant: 'shop-b', userIds: ['u'], recentLimit: 0 }, { metadata })),
      listUsers: await code(client.listUsers({ tenant: 'shop-a', pageSize: 1, pageToken: '' }, { metadata })),
    };
  } finally {
    client.close();
  }
}

test('a bearer token acts for its own shop and methods only; anything else is PERMISSION_DENIED', async () => {
  expect(await outcomes({ token: TOKEN })).toEqual({
    ownShop: 'OK',
    otherShop: "PERMISSION_DENIED: caller shop-a-backend may not act for tenant 'shop-b'",
    listUsers: 'PERMISSION_DENIED: caller shop-a-backend may not call ListUsers',
  });
  expect(seen).toEqual(['shop-a-backend']);
});

test('unknown tokens, and certificates the callers file does not name, are UNAUTHENTICATED', async () => {
  const unknown = await outcomes({ token: 'guessed' });
  expect(unknown.ownShop).toBe('UNAUTHENTICATED: unknown bearer token');
  const anonymous = await outcomes({});
  expect(anonymous.listUsers).toMatch(/^UNAUTHENTICATED: no caller identity/);
});

test('an mTLS identity in the callers file gets its grant, across tenants', async () => {
  const r = await outcomes({ identity: pki.issueClient('churn-prediction') });
  expect(r).toEqual({ ownShop: 'OK', otherShop: 'OK', listUsers: 'OK' });
});

test('callers files parse strictly, naming the problem', () => {
  expect(() => parseCallers('{')).toThrow(/not JSON/);
  expect(() => parseCallers('{"callers": []}')).toThrow(/non-empty "callers"/);
  expect(() => parseCallers('{"callers": [{"name": "x", "tenants": ["a"], "methods": ["Recommend"]}]}')).toThrow(
    /needs token_sha256 or identities/,
  );
  expect(() =>
    parseCallers('{"callers": [{"name": "x", "token_sha256": "ab", "tenants": ["a"], "methods": ["Recommend"]}]}'),
  ).toThrow(/64 hex digits/);
  expect(() =>
    parseCallers(
      `{"callers": [{"name": "x", "token_sha256": "${sha('t')}", "tenants": ["a"], "methods": ["recommend"]}]}`,
    ),
  ).toThrow(/not an RPC name/);
});
