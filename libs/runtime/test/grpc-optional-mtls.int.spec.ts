/**
 * Issue #13: with a client CA, a client certificate is asked for, not required, so that a backend that
 * authenticates with a bearer token only can connect; a presented certificate is verified against the CA
 * (by TLS and again by the server: validity dates, issuer and signature) before it identifies anyone.
 * Without a callers file a verified certificate is the only identity, so a call without one is refused.
 */
import { featureV1 } from '@aisle/contracts';
import { generateTestPki, type TestPki } from '@aisle/testkit';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ClientCertificateVerifier,
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

const TOKEN = 'token-only-backend-secret';
let pki: TestPki;
let withCallers: RunningGrpcServer;
let certOnly: RunningGrpcServer;
const seen: string[] = [];

beforeAll(async () => {
  pki = generateTestPki();
  const tls = { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, clientCaFile: pki.caFile };
  const callers = parseCallers(
    JSON.stringify({
      callers: [
        {
          name: 'backend',
          token_sha256: createHash('sha256').update(TOKEN).digest('hex'),
          tenants: ['shop'],
          methods: ['GetUserFeatures'],
        },
        { name: 'ranking', identities: ['ranking'], tenants: ['*'], methods: ['*'] },
      ],
    }),
  );
  const service = (instr: Parameters<typeof fakeFeatureService>[1]) =>
    fakeFeatureService(
      {
        getUserFeatures: async (_req, ctx) => {
          seen.push(ctx.caller?.name ?? ctx.clientIdentities[0] ?? '(none)');
          return { users: [], asOf: undefined };
        },
      },
      instr,
    );
  const tenants = new TenantDirectory(parseTenantList('shop'));
  withCallers = await startGrpcServer({ host: '127.0.0.1', port: 0, tls, services: [service({ callers, tenants })] });
  certOnly = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    tls,
    requireClientCertificate: true,
    services: [service({ tenants })],
  });
});

afterAll(async () => {
  await Promise.all([withCallers?.shutdown(1000), certOnly?.shutdown(1000)]);
});

async function call(
  server: RunningGrpcServer,
  opts: { token?: string; identity?: { certFile: string; keyFile: string } },
): Promise<string> {
  const client = createGrpcClient(featureV1.FeatureServiceService, `localhost:${server.port}`, {
    deadlineMs: 5000,
    credentials: clientCredentials({ caFile: pki.caFile, ...opts.identity }),
  });
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  try {
    return await outcomeOf(client.getUserFeatures({ tenant: 'shop', userIds: ['u'], recentLimit: 0 }, { metadata }));
  } finally {
    client.close();
  }
}

const rogue = () => ({ certFile: pki.rogueClientCertFile, keyFile: pki.rogueClientKeyFile });

test('a bearer token without a client certificate connects; a verified certificate identifies its holder', async () => {
  seen.length = 0;
  expect(await call(withCallers, { token: TOKEN })).toBe('OK');
  expect(await call(withCallers, { identity: pki.issueClient('ranking') })).toBe('OK');
  expect(seen).toEqual(['backend', 'ranking']);
});

test('no identity, or a certificate the CA did not issue, is UNAUTHENTICATED', async () => {
  expect(await call(withCallers, {})).toMatch(/^UNAUTHENTICATED: no caller identity/);
  // TLS lets the handshake finish (certificates are optional) but never reports an unverified one.
  expect(await call(withCallers, { identity: rogue() })).toMatch(/^UNAUTHENTICATED: no caller identity/);
});

test('without a callers file every call needs a verified client certificate', async () => {
  seen.length = 0;
  expect(await call(certOnly, {})).toMatch(/^UNAUTHENTICATED: no client certificate/);
  expect(await call(certOnly, { token: TOKEN })).toMatch(/^UNAUTHENTICATED: no client certificate/);
  expect(await call(certOnly, { identity: rogue() })).toMatch(/^UNAUTHENTICATED: no client certificate/);
  expect(await call(certOnly, { identity: pki.issueClient('ranking') })).toBe('OK');
  expect(seen).toEqual(['ranking']);
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
});
