/**
 * Issue #13: data APIs need a caller identity outside local development. Each caller is recognized by
 * a bearer token (its SHA-256 in the callers file) or its mTLS certificate, and may use only the RPCs
 * and tenants it is granted: unknown callers get UNAUTHENTICATED, known ones outside their grant
 * PERMISSION_DENIED (a shop backend may read its own shop's user features, but not ListUsers, and not
 * for another shop). With a client CA, a client certificate is asked for, not required (a backend with
 * only a bearer token connects); a presented one identifies only once verified against the CA (by TLS and
 * again by the server: issuer, signature, validity dates), and one that does not verify is refused
 * (UNAUTHENTICATED) even when the call also carries a valid bearer token: a caller that presents a
 * certificate is judged by it. Without a callers file a verified certificate is the only identity, so a
 * call without one is refused.
 */
import { featureV1 } from '@aisle/contracts';
import { generateTestPki, type TestPki } from '@aisle/testkit';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ClientCertificateVerifier,
  unverifiedCertificateProblem,
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
let certOnly: RunningGrpcServer;
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
    // mTLS: certificates from the CA are asked for; the callers file decides what each caller may do.
    tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile },
    services: [service],
  });
  server.setServing(true);
  certOnly = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile },
    requireClientCertificate: true,
    services: [
      fakeFeatureService({
        getUserFeatures: async (_req, ctx) => {
          seen.push(ctx.clientIdentities[0] ?? '(none)');
          return { users: [], asOf: undefined };
        },
      }),
    ],
  });
});

afterAll(async () => {
  await Promise.all([server?.shutdown(1000), certOnly?.shutdown(1000)]);
});

/** Calls with a certificate (by default one the callers file does not name) and maybe a bearer token. */
async function outcomes(opts: {
  token?: string;
  identity?: { certFile: string; keyFile: string } | 'none';
  server?: RunningGrpcServer;
}) {
  const identity =
    opts.identity === 'none' ? {} : (opts.identity ?? { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });
  const client = createGrpcClient(featureV1.FeatureServiceService, `localhost:${(opts.server ?? server).port}`, {
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

const rogue = () => ({ certFile: pki.rogueClientCertFile, keyFile: pki.rogueClientKeyFile });

test('a bearer token without a client certificate connects; a certificate that does not verify is refused, token or not', async () => {
  seen.length = 0;
  expect((await outcomes({ token: TOKEN, identity: 'none' })).ownShop).toBe('OK');
  expect(seen).toEqual(['shop-a-backend']);
  expect((await outcomes({ identity: 'none' })).ownShop).toMatch(/^UNAUTHENTICATED: no caller identity/);
  // TLS lets the handshake finish (certificates are optional), and grpc-js reports no unverified
  // certificate: the server looks at the connection itself, and a valid token does not rescue the call.
  const expired = pki.issueClient('shop-a-backend', { expired: true });
  const refused = /^UNAUTHENTICATED: client certificate refused: not verified by TLS \(\w+\)$/;
  for (const identity of [rogue(), expired])
    for (const token of [undefined, TOKEN]) {
      const all = Object.values(await outcomes({ identity, ...(token ? { token } : {}) }));
      expect(all.filter((outcome) => !refused.test(outcome))).toEqual([]);
    }
  expect((await outcomes({ identity: expired, token: TOKEN })).ownShop).toBe(
    'UNAUTHENTICATED: client certificate refused: not verified by TLS (CERT_HAS_EXPIRED)',
  );
  expect(seen).toEqual(['shop-a-backend']); // no handler ran for any of them
  // The same token beside a certificate that verifies (one the callers file does not name) still works.
  expect((await outcomes({ token: TOKEN })).ownShop).toBe('OK');
});

test('without a callers file every call needs a verified client certificate', async () => {
  seen.length = 0;
  const status = async (o: Parameters<typeof outcomes>[0]) => (await outcomes({ ...o, server: certOnly })).ownShop;
  expect(await status({ identity: 'none' })).toMatch(/^UNAUTHENTICATED: no client certificate/);
  expect(await status({ identity: 'none', token: TOKEN })).toMatch(/^UNAUTHENTICATED: no client certificate/);
  expect(await status({ identity: rogue() })).toMatch(/^UNAUTHENTICATED: client certificate refused/);
  expect(await status({ identity: pki.issueClient('ranking') })).toBe('OK');
  expect(seen).toEqual(['ranking', 'ranking']); // its own shop's and another's: no callers file, no grants
});

test('the server verifies a certificate itself: issuer, signature and validity dates', () => {
  const verifier = ClientCertificateVerifier.fromFile(pki.caFile);
  const der = (file: string) => new X509Certificate(readFileSync(file)).raw;
  const good = der(pki.clientCertFile);
  expect(verifier.problem(good)).toBeUndefined();
  expect(verifier.problem(der(pki.rogueClientCertFile))).toBe('not issued by the client CA');
  expect(verifier.problem(good, Date.now() + 2 * 86_400_000)).toMatch(/^outside its validity/);
  expect(verifier.problem(good, Date.now() - 86_400_000)).toMatch(/^outside its validity/);
  expect(verifier.problem(Buffer.from('nonsense'))).toBe('not a certificate');
  expect(() => verifier.identities({ raw: der(pki.rogueClientCertFile) } as never)).toThrow(
    'client certificate refused: not issued by the client CA',
  );
  expect(verifier.identities(undefined)).toEqual([]);
  expect(() => new ClientCertificateVerifier('no certificates here')).toThrow(/no PEM certificate/);
  // A call whose connection cannot be found (grpc-js moved it) is refused, not let through.
  expect(unverifiedCertificateProblem({})).toBe('the connection cannot be checked for a client certificate');
});
