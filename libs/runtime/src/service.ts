import { Streams, type StreamSpec } from '@aisle/contracts';
import { existsSync } from 'node:fs';
import type { Tracer } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Registry } from 'prom-client';
import type { AdmissionLimits } from './admission';
import { createPublicKey } from 'node:crypto';
import { checkCommonConfig, ConfigError, type commonConfig, type ConfigOf, type ModelConfig } from './config';
import {
  clientCredentials,
  serviceNameOf,
  startGrpcServer,
  type grpc,
  type GrpcServerOptions,
  type RunningGrpcServer,
} from './grpc';
import { ModelRegistry } from './model-registry';
import { readModelSigningKey } from './model-signing';
import { Lifecycle } from './lifecycle';
import { createLogger, type Logger, type LogSink } from './logger';
import { counterIn, createMetricsRegistry, startMetricsServer } from './metrics';
import {
  connectNats,
  ensureStreams,
  jetStreamOf,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
} from './nats';
import { AsyncJetStreamPublisher } from './js-publisher';
import { Readiness } from './readiness';
import { initTelemetry, type Telemetry } from './telemetry';
import { TenantDirectory, watchTenantBucket } from './tenants';
import { followCallersFile, type CallerPolicy } from './callers';

export type CommonConfig = ConfigOf<typeof commonConfig>;

export interface ServiceBase {
  readonly name: string;
  /** Admission control for every RPC this service serves (AISLE_GRPC_MAX_CONCURRENT/QUEUE), if on. */
  readonly admission: AdmissionLimits | undefined;
  readonly logger: Logger;
  readonly tracer: Tracer;
  readonly registry: Registry;
  readonly lifecycle: Lifecycle;
  /** What health reports: every part sets the conditions it knows about. */
  readonly readiness: Readiness;
  readonly metricsPort: number | undefined;
  /** The declared tenants (AISLE_TENANTS, plus the `aisle-tenants` bucket once the bus is connected). */
  readonly tenants: TenantDirectory;
  /** Who may call the data APIs (AISLE_GRPC_CALLERS_FILE); everyone when absent (local development). */
  readonly callers: CallerPolicy | undefined;
  /** Sets what `/status` on the metrics port reports (plus the readiness problems, if any). */
  setStatus(provider: () => unknown): void;
}

export interface ServiceBaseOptions {
  /** Install SIGTERM/SIGINT handlers (off when several services share a test process). */
  handleSignals?: boolean;
  logSink?: LogSink;
  spanExporter?: SpanExporter;
}

/**
 * The first steps of every service's composition root: logger, shutdown hooks (installed before any
 * I/O), telemetry (flushed last) and the metrics endpoint.
 */
export async function createServiceBase(
  defaultName: string,
  config: CommonConfig,
  opts: ServiceBaseOptions = {},
): Promise<ServiceBase> {
  const name = config.serviceName || defaultName;
  const logger = createLogger({
    service: name,
    level: config.logLevel,
    ...(opts.logSink ? { sink: opts.logSink } : {}),
  });
  const lifecycle = new Lifecycle(logger, config.shutdownTimeoutMs);
  if (opts.handleSignals ?? true) lifecycle.installSignalHandlers();
  const telemetry: Telemetry = initTelemetry({
    serviceName: name,
    otlpEndpoint: config.otlpEndpoint,
    ...(opts.spanExporter ? { exporter: opts.spanExporter } : {}),
  });
  lifecycle.onShutdown('telemetry', () => telemetry.shutdown());
  const registry = createMetricsRegistry(name);
  const readiness = new Readiness();
  let metricsPort: number | undefined;
  let statusProvider: () => unknown = () => ({ service: name });
  const status = () => {
    const problems = readiness.list();
    const s = statusProvider();
    return problems.length > 0 && typeof s === 'object' && s !== null ? { ...s, not_ready: problems } : s;
  };
  if (config.metricsPort >= 0) {
    const metrics = await startMetricsServer(registry, config.metricsPort, '0.0.0.0', status);
    metricsPort = metrics.port;
    lifecycle.onShutdown('metrics', () => metrics.close());
  }
  if (config.grpcCallers) {
    const reloads = counterIn(registry, 'aisle_grpc_callers_reloads_total', 'Callers file re-read after a change', [
      'result',
    ]);
    const stop = followCallersFile(config.grpcCallers, {
      intervalMs: config.grpcCallersReloadMs,
      onReload: (r) => {
        reloads.inc({ result: r.ok ? 'applied' : 'invalid' });
        if (r.ok) logger.info('callers file changed: new callers in force');
        else
          logger.error('callers file changed but is invalid; the previous callers stay in force', { error: r.error });
      },
    });
    lifecycle.onShutdown('callers file', stop);
  }
  return {
    name,
    admission:
      config.grpcMaxConcurrent > 0
        ? { maxConcurrent: config.grpcMaxConcurrent, maxQueue: config.grpcMaxQueue }
        : undefined,
    logger,
    tracer: telemetry.tracer,
    registry,
    lifecycle,
    readiness,
    metricsPort,
    tenants: new TenantDirectory(config.tenants),
    callers: config.grpcCallers,
    setStatus: (p) => {
      statusProvider = p;
    },
  };
}

export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The one way services publish to JetStream. */
  readonly publisher: AsyncJetStreamPublisher;
  /** False while the connection is lost (the client reconnects by itself). */
  connected(): boolean;
}

/**
 * Connects to NATS (drained at shutdown) and provisions the streams this service touches, plus the
 * DLQ stream that every consumer sends what it gives up on to. With `healthNeedsNats`, a lost
 * connection turns health NOT_SERVING until it is back (for services that cannot do their job without
 * it, such as ingest); otherwise it is only logged.
 */
export async function connectBus(
  base: ServiceBase,
  config: CommonConfig,
  streams: readonly StreamSpec[],
  opts: { healthNeedsNats?: boolean } = {},
): Promise<Bus> {
  let connected = true;
  const nc = await connectNats({
    onConnectionChange: (up) => {
      connected = up;
      if (opts.healthNeedsNats)
        base.readiness.set('nats', up, { reason: `NATS connection lost (${config.natsUrl}); reconnecting` });
    },
    servers: config.natsUrl,
    name: base.name,
    user: config.natsUser,
    password: config.natsPassword,
    token: config.natsToken,
    credsFile: config.natsCredsFile,
    tls: { caFile: config.natsTlsCa, certFile: config.natsTlsCert, keyFile: config.natsTlsKey },
    logger: base.logger,
  });
  base.lifecycle.onShutdown('nats', async () => {
    if (!nc.isClosed()) await nc.drain();
  });
  const publisher = new AsyncJetStreamPublisher(nc);
  base.lifecycle.onShutdown('publisher', () => publisher.close());
  const { js, jsm } = await jetStreamOf(nc);
  const all = streams.some((s) => s.name === Streams.DLQ.name) ? streams : [...streams, Streams.DLQ];
  await ensureStreams(jsm, all, { replicas: config.natsStreamReplicas });
  if (config.tenantsBucket) {
    const watch = await watchTenantBucket(nc, base.tenants, {
      logger: base.logger,
      replicas: config.natsStreamReplicas,
      registry: base.registry,
    });
    base.lifecycle.onShutdown('tenant bucket', () => watch.stop());
  }
  return { nc, js, jsm, publisher, connected: () => connected && !nc.isClosed() };
}

/**
 * The model registry with this service's pinned key and size limits. The trainer also signs with its
 * private key (AISLE_MODEL_SIGNING_KEY_FILE) and, without a separate public key, verifies the active
 * versions it scores with the matching public key.
 */
export async function openModelRegistry(
  bus: Bus,
  config: CommonConfig & ModelConfig & { readonly modelSigningKeyFile?: string | undefined },
  logger?: Logger,
): Promise<ModelRegistry> {
  const signingKey = config.modelSigningKeyFile ? readModelSigningKey(config.modelSigningKeyFile) : undefined;
  const verifyKey = config.modelPublicKey ?? (signingKey ? createPublicKey(signingKey) : undefined);
  if (!verifyKey)
    logger?.warn('no pinned model key (AISLE_MODEL_PUBLIC_KEY): unsigned models are accepted (development only)');
  return ModelRegistry.open(bus.nc, {
    replicas: config.natsStreamReplicas,
    verifyKey,
    signingKey,
    limits: {
      maxModelBytes: config.modelMaxBytes,
      maxSidecarBytes: config.modelSidecarMaxBytes,
      bucketMaxBytes: config.modelBucketMaxBytes,
    },
  });
}

/**
 * Starts gRPC with health NOT_SERVING, then reporting `base.readiness`; on shutdown flips health to
 * NOT_SERVING, waits the drain delay, then drains calls until the deadline. The returned server's
 * `setServing`/`setServiceServing` are readiness conditions too.
 */
export async function serveGrpc(
  base: ServiceBase,
  config: CommonConfig,
  services: GrpcServerOptions['services'],
): Promise<RunningGrpcServer> {
  const { readiness } = base;
  // Outside local development every caller of a data API is identified: a bearer token of the callers
  // file, or a client certificate (mTLS; with an allow-list, per RPC).
  const identified = config.grpcCallers || config.grpcAllowedClients || config.grpcTlsClientCa;
  if (config.deployment === 'production' && services.length > 0 && !identified)
    throw new ConfigError([
      'AISLE_GRPC_CALLERS_FILE or mTLS (AISLE_GRPC_TLS_CLIENT_CA, optionally AISLE_GRPC_ALLOWED_CLIENTS) is required when AISLE_ENV=production (data APIs need a caller identity)',
    ]);
  readiness.set('serving', false, { reason: 'starting' });
  const raw = await startGrpcServer({
    host: config.grpcHost,
    port: config.grpcPort,
    services,
    maxReceiveMessageBytes: config.grpcMaxMessageBytes,
    healthPort: config.grpcHealthPort,
    allowedClients: config.grpcAllowedClients,
    // Client certificates are asked for, not required: with a callers file a bearer token identifies too.
    requireClientCertificate: !config.grpcCallers,
    tls:
      config.grpcTlsCert && config.grpcTlsKey
        ? { certFile: config.grpcTlsCert, keyFile: config.grpcTlsKey, clientCaFile: config.grpcTlsClientCa }
        : undefined,
  });
  const names = services.map((s) => serviceNameOf(s.definition));
  const report = (): void => {
    raw.setServiceServing('', readiness.ready());
    for (const n of names) raw.setServiceServing(n, readiness.ready(n));
  };
  base.lifecycle.onShutdown('readiness', readiness.onChange(report));
  report();
  const server: RunningGrpcServer = {
    ...raw,
    setServing: (serving) => readiness.set('serving', serving, { reason: 'stopped' }),
    setServiceServing: (service, serving) => readiness.set('service', serving, { service, reason: 'not ready yet' }),
  };
  base.lifecycle.onShutdown('grpc', async () => {
    server.setServing(false);
    if (config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, config.drainDelayMs));
    await server.shutdown(Math.max(0, base.lifecycle.remainingMs() - 1000));
  });
  return server;
}

/**
 * Decodes one consumed payload; a payload that does not decode is the message's fault, so the reason
 * comes back as a string for a `term` outcome instead of an exception that would fail the whole batch.
 */
export function decodeOrReason<T>(decode: () => T, what: string): T | string {
  try {
    return decode();
  } catch (err) {
    return `payload: not a valid ${what} (${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * Retention: runs `prune(now - retentionMs)` soon after start and then every `everyMs` (default one
 * hour), one run at a time, logging what it deleted; `retentionMs` 0 keeps everything. Stopped at shutdown.
 */
export function scheduleRetention(
  base: ServiceBase,
  opts: {
    what: string;
    retentionMs: number;
    everyMs?: number;
    /** Deletes what is older than the cutoff; `more`: the pass stopped at its bound, another follows in a second. */
    prune: (cutoffMs: number) => Promise<{ deleted: number; more?: boolean }>;
  },
): void {
  if (opts.retentionMs <= 0) return;
  const deleted = counterIn(base.registry, 'aisle_retention_deleted_total', 'Records deleted by retention', ['what']);
  let running: Promise<void> | undefined;
  let stopped = false;
  let again: NodeJS.Timeout | undefined;
  const run = (): void => {
    if (running || stopped) return;
    const cutoff = Date.now() - opts.retentionMs;
    running = opts
      .prune(cutoff)
      .then((r) => {
        deleted.inc({ what: opts.what }, r.deleted);
        if (r.deleted > 0)
          base.logger.info('retention', {
            what: opts.what,
            deleted: r.deleted,
            before: new Date(cutoff).toISOString(),
          });
        if (r.more && !stopped) again = setTimeout(run, 1_000).unref();
      })
      .catch((err: unknown) => base.logger.warn('retention failed; trying again later', { what: opts.what, err }))
      .finally(() => {
        running = undefined;
      });
  };
  const first = setTimeout(run, 1_000).unref();
  const timer = setInterval(run, opts.everyMs ?? 3_600_000).unref();
  base.lifecycle.onShutdown(`${opts.what} retention`, async () => {
    stopped = true;
    clearTimeout(first);
    clearTimeout(again);
    clearInterval(timer);
    await running;
  });
}

/** Credentials for this service's outgoing gRPC calls (AISLE_GRPC_CLIENT_TLS_*). */
export function outgoingCredentials(config: CommonConfig): grpc.ChannelCredentials {
  return clientCredentials({
    caFile: config.grpcClientTlsCa,
    certFile: config.grpcClientTlsCert,
    keyFile: config.grpcClientTlsKey,
  });
}

/**
 * The whole life of a service process: load config (exit 2 naming every bad variable), create the base,
 * run `start` (which opens clients, registering each close, and starts gRPC), then flip health to
 * SERVING and log `ready`. A failed start shuts down what was opened and exits 1.
 */
export interface StartedService {
  grpc: RunningGrpcServer;
  details?: Record<string, unknown>;
  /** Hosted gRPC services that stay NOT_SERVING until something still to come arrives. */
  notReady?: string[];
}

/** A service's composition root: opens what it needs (registering each close) and starts gRPC. */
export type ServiceStart<C extends CommonConfig> = (base: ServiceBase, config: C) => Promise<StartedService>;

function markReady(base: ServiceBase, started: StartedService): void {
  const { grpc, details, notReady } = started;
  grpc.setServing(true);
  // Services whose readiness depends on something still to come (a published model) stay
  // NOT_SERVING under their own name; "" (the process) is SERVING, for liveness probes.
  for (const name of notReady ?? []) grpc.setServiceServing(name, false);
  base.logger.info('ready', {
    grpc_port: grpc.port,
    metrics_port: base.metricsPort,
    ...(grpc.healthPort !== undefined ? { health_port: grpc.healthPort } : {}),
    ...details,
  });
}

export interface InProcessService {
  readonly base: ServiceBase;
  readonly grpcPort: number;
  stop(): Promise<void>;
}

/**
 * Runs a service inside the current process (no signal handlers): for tests that need one view of
 * several services, such as a trace across them, and for embedding Aisle in another Node program.
 */
export async function startServiceInProcess<C extends CommonConfig>(
  defaultName: string,
  config: C,
  start: ServiceStart<C>,
  opts: Omit<ServiceBaseOptions, 'handleSignals'> = {},
): Promise<InProcessService> {
  checkCommonConfig(config, existsSync);
  const base = await createServiceBase(defaultName, config, { ...opts, handleSignals: false });
  try {
    const started = await start(base, config);
    markReady(base, started);
    return { base, grpcPort: started.grpc.port, stop: () => base.lifecycle.shutdown('stop') };
  } catch (err) {
    await base.lifecycle.shutdown('start failed');
    throw err;
  }
}

export function runService<C extends CommonConfig>(
  defaultName: string,
  loadConfig: () => C,
  start: ServiceStart<C>,
): void {
  let config: C;
  try {
    config = loadConfig();
    checkCommonConfig(config, existsSync);
  } catch (err) {
    process.stderr.write(`${defaultName}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  void (async () => {
    const base = await createServiceBase(defaultName, config);
    try {
      markReady(base, await start(base, config));
    } catch (err) {
      base.logger.error('start failed', { err });
      await base.lifecycle.shutdown('start failed');
      process.exit(1);
    }
  })();
}
