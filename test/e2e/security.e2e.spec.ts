/**
 * Issue #5's security switches with real processes and certificates generated here: NATS with TLS,
 * client certificates and user/password; gRPC with TLS and mTLS; misconfiguration refused at start.
 */
import { featureV1 } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import {
  clientCredentials,
  connectNats,
  createGrpcClient,
  grpc,
  isGrpcError,
  jetStreamOf,
  memoryLogger,
} from '@aisle/runtime';
import {
  eventToProducerJson,
  eventually,
  generateTestPki,
  healthCheck,
  runJobProcess,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
  type TestPki,
} from '@aisle/testkit';

jest.setTimeout(120_000);

const shop = generateShop({ seed: 3, users: 5, items: 30 });
const user = shop.events[0]!.userId;

describe('TLS, mTLS and authentication, all switched on', () => {
  let pki: TestPki;
  let nats: NatsServerHandle;
  let storeFile: ReturnType<typeof tempSqliteUrl>;
  let ingest: ServiceProcess;
  let feature: ServiceProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    pki = generateTestPki();
    nats = await startNatsServer({
      args: [
        '--tls',
        '--tlscert',
        pki.serverCertFile,
        '--tlskey',
        pki.serverKeyFile,
        '--tlscacert',
        pki.caFile,
        '--tlsverify',
        '--user',
        'aisle',
        '--pass',
        's3cret',
      ],
    });
    storeFile = tempSqliteUrl();
    env = {
      AISLE_NATS_URL: nats.url,
      AISLE_NATS_USER: 'aisle',
      AISLE_NATS_PASSWORD: 's3cret',
      AISLE_NATS_TLS_CA: pki.caFile,
      AISLE_NATS_TLS_CERT: pki.clientCertFile,
      AISLE_NATS_TLS_KEY: pki.clientKeyFile,
      AISLE_STORE_URL: storeFile.url,
      AISLE_GRPC_TLS_CERT: pki.serverCertFile,
      AISLE_GRPC_TLS_KEY: pki.serverKeyFile,
      AISLE_GRPC_TLS_CLIENT_CA: pki.caFile,
      AISLE_GRPC_HEALTH_PORT: '0',
    };
    [ingest, feature] = await Promise.all([startServiceProcess('ingest', env), startServiceProcess('feature', env)]);
  });

  afterAll(async () => {
    await Promise.all([ingest?.stop(), feature?.stop()]);
    await nats?.dispose();
    storeFile?.dispose();
  });

  const featureClient = (creds: grpc.ChannelCredentials) =>
    createGrpcClient(featureV1.FeatureServiceService, `localhost:${feature.grpcPort}`, {
      deadlineMs: 3000,
      credentials: creds,
    });
  const failureOf = async (creds: grpc.ChannelCredentials): Promise<string> => {
    const c = featureClient(creds);
    try {
      await c.getUserFeatures({ tenant: '', userIds: [user], recentLimit: 0 });
      return 'answered';
    } catch (err) {
      return isGrpcError(err) ? grpc.status[err.code] : String(err);
    } finally {
      c.close();
    }
  };

  test('events flow over authenticated TLS NATS and features are served over mTLS only', async () => {
    const nc = await connectNats({
      servers: nats.url,
      name: 'producer',
      user: 'aisle',
      password: 's3cret',
      tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
      logger: memoryLogger(),
    });
    const { js } = await jetStreamOf(nc);
    const mine = shop.events.filter((e) => e.userId === user).slice(0, 20);
    for (const e of mine)
      await js.publish(
        `aisle.clickstream.v1.${e.type}`,
        new TextEncoder().encode(JSON.stringify(eventToProducerJson(e))),
      );
    await nc.close();

    const good = featureClient(
      clientCredentials({ caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile }),
    );
    try {
      await eventually(
        async () => {
          const res = await good.getUserFeatures({ tenant: '', userIds: [user], recentLimit: 0 });
          return (
            res.users[0]?.known === true &&
            res.users[0].counts?.view === mine.filter((e) => e.type === 'view').length &&
            res.users[0].counts.purchase === mine.filter((e) => e.type === 'purchase').length
          );
        },
        { what: 'features over mTLS' },
      );
    } finally {
      good.close();
    }

    expect(await failureOf(grpc.credentials.createInsecure())).toBe('UNAVAILABLE');
    // Kubelet probes speak plaintext: the health-only port answers them, and serves nothing else.
    const healthPort = Number(feature.logs.find((l) => l['msg'] === 'ready')?.['health_port']);
    expect(await healthCheck(`127.0.0.1:${healthPort}`)).toBe('SERVING');
    const viaHealthPort = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${healthPort}`, {
      deadlineMs: 3000,
    });
    const err: unknown = await viaHealthPort
      .getUserFeatures({ tenant: '', userIds: [user], recentLimit: 0 })
      .catch((e: unknown) => e);
    viaHealthPort.close();
    expect(isGrpcError(err) && grpc.status[err.code]).toBe('UNIMPLEMENTED');
    // Client certificates are asked for, not required (a caller may use a bearer token instead); without a
    // callers file a verified one is the only identity: TLS without one, or with another CA's, is refused.
    expect(await failureOf(clientCredentials({ caFile: pki.caFile }))).toBe('UNAUTHENTICATED');
    expect(
      await failureOf(
        clientCredentials({ caFile: pki.caFile, certFile: pki.rogueClientCertFile, keyFile: pki.rogueClientKeyFile }),
      ),
    ).toBe('UNAUTHENTICATED');
    expect(
      await failureOf(
        clientCredentials({ caFile: pki.rogueCaFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile }),
      ),
    ).toBe('UNAVAILABLE'); // server not trusted
  });

  test('NATS refuses a wrong password, a missing client certificate and plaintext', async () => {
    const attempt = async (opts: Omit<Parameters<typeof connectNats>[0], 'logger'>) => {
      try {
        const nc = await connectNats({ ...opts, logger: memoryLogger(), connectTimeoutMs: 3000 });
        await nc.close();
        return 'connected';
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    };
    const tls = { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
    expect(await attempt({ servers: nats.url, name: 't', user: 'aisle', password: 'wrong', tls })).toMatch(
      /Authorization Violation/i,
    );
    expect(
      await attempt({ servers: nats.url, name: 't', user: 'aisle', password: 's3cret', tls: { caFile: pki.caFile } }),
    ).not.toBe('connected');
    expect(await attempt({ servers: nats.url, name: 't', user: 'aisle', password: 's3cret' })).not.toBe('connected');
    expect(await attempt({ servers: nats.url, name: 't', user: 'aisle', password: 's3cret', tls })).toBe('connected');
  });

  test('a service with a wrong NATS password fails to start and says why', async () => {
    const run = await runJobProcess(
      'feature',
      { ...env, AISLE_NATS_PASSWORD: 'wrong', AISLE_GRPC_PORT: '0', AISLE_METRICS_PORT: '-1' },
      { timeoutMs: 30_000 },
    );
    expect(run.code).toBe(1);
    expect(JSON.stringify(run.logs.find((l) => l['msg'] === 'start failed'))).toMatch(/Authorization Violation/i);
  });

  test('half-configured security stops the start with every variable named', async () => {
    const run = await runJobProcess(
      'feature',
      {
        AISLE_GRPC_TLS_CERT: pki.serverCertFile,
        AISLE_GRPC_TLS_CLIENT_CA: '/nonexistent/ca.pem',
        AISLE_NATS_USER: 'aisle',
        AISLE_NATS_TOKEN: 'tok',
      },
      { timeoutMs: 30_000 },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('AISLE_GRPC_TLS_KEY is required when AISLE_GRPC_TLS_CERT is set');
    expect(run.stderr).toContain('AISLE_NATS_PASSWORD is required when AISLE_NATS_USER is set');
    expect(run.stderr).toContain('use one NATS authentication method, not AISLE_NATS_USER and AISLE_NATS_TOKEN');
    expect(run.stderr).toContain('AISLE_GRPC_TLS_CLIENT_CA names a file that does not exist: /nonexistent/ca.pem');
  });
});

describe('token authentication and plain TLS', () => {
  test('a service connects to a token-protected TLS NATS and serves TLS gRPC', async () => {
    const pki = generateTestPki();
    const nats = await startNatsServer({
      args: ['--tls', '--tlscert', pki.serverCertFile, '--tlskey', pki.serverKeyFile, '--auth', 'tok3n'],
    });
    const storeFile = tempSqliteUrl();
    try {
      const feature = await startServiceProcess('feature', {
        AISLE_NATS_URL: nats.url,
        AISLE_NATS_TOKEN: 'tok3n',
        AISLE_NATS_TLS_CA: pki.caFile,
        AISLE_STORE_URL: storeFile.url,
        AISLE_GRPC_TLS_CERT: pki.serverCertFile,
        AISLE_GRPC_TLS_KEY: pki.serverKeyFile,
      });
      try {
        const c = createGrpcClient(featureV1.FeatureServiceService, `localhost:${feature.grpcPort}`, {
          deadlineMs: 3000,
          credentials: clientCredentials({ caFile: pki.caFile }),
        });
        const res = await c.getUserFeatures({ tenant: '', userIds: ['nobody'], recentLimit: 0 });
        c.close();
        expect(res.users[0]?.known).toBe(false);
      } finally {
        await feature.stop();
      }
    } finally {
      await nats.dispose();
      storeFile.dispose();
    }
  });
});
