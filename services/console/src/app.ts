import { Streams } from '@aisle/contracts';
import {
  connectBus,
  ModelRegistry,
  outgoingCredentials,
  serveGrpc,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { AccessFileError, parseAccessFile, SessionSigner, type AccessFile } from './access';
import type { Alert } from './api';
import { serviceTargets, type ConsoleConfig } from './config';
import { startConsoleHttp } from './console.http';
import {
  consumerLags,
  followChurnAlerts,
  followDeadLetters,
  readDeadLetter,
  registryPort,
  replayDeadLetters,
  streamStats,
} from './console.nats';
import { DeadLetterIndex } from './dead-letters';
import { experimentsView, experimentView, promoteArm, stopExperiment } from './experiments';
import { OverviewSampler } from './overview';
import { createDataClients, probeServices } from './services.grpc';
import { modelsView, searchView, shopperView } from './views';

/** Built browser app: `dist/web` beside the compiled server (the same path from `src/` in tests). */
const WEB_ROOT = resolve(__dirname, '..', 'dist', 'web');

function loadAccess(config: ConsoleConfig): AccessFile | undefined {
  if (!config.accessFile) return undefined;
  try {
    return parseAccessFile(JSON.parse(readFileSync(config.accessFile, 'utf8')));
  } catch (err) {
    if (err instanceof AccessFileError) throw err;
    throw new AccessFileError(`cannot read ${config.accessFile}`, { cause: err });
  }
}

/** The console's composition root (`main.ts` runs it as a process). */
export async function startConsole(base: ServiceBase, config: ConsoleConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const access = loadAccess(config);
  const signer = config.sessionSecret ? new SessionSigner(config.sessionSecret, config.sessionTtlMs) : undefined;
  const bus = await connectBus(base, config, [Streams.DLQ, Streams.CHURN, Streams.MODELS]);
  const registry = await ModelRegistry.open(bus.nc, { replicas: config.natsStreamReplicas });
  const models = registryPort(registry);
  const targets = serviceTargets(config);
  const credentials = outgoingCredentials(config);
  const data = createDataClients(targets, credentials, config.callDeadlineMs);
  lifecycle.onShutdown('service clients', () => data.close());

  const deadLetters = new DeadLetterIndex(config.deadLetterIndexSize);
  const stopDeadLetters = await followDeadLetters(bus, deadLetters, config.deadLetterIndexSize, logger);
  lifecycle.onShutdown('dead-letter follower', stopDeadLetters);
  const pendingAlerts: Alert[] = [];
  const stopAlerts = await followChurnAlerts(bus, 50, (a) => pendingAlerts.push(a), logger);
  lifecycle.onShutdown('churn alert follower', stopAlerts);

  const probe = probeServices(targets, credentials, Math.min(config.callDeadlineMs, config.sampleIntervalMs * 2));
  const sampler = new OverviewSampler(
    {
      streams: () => streamStats(bus.jsm),
      consumers: () => consumerLags(bus.jsm),
      services: probe,
      newAlerts: () => pendingAlerts.splice(0),
    },
    { intervalMs: config.sampleIntervalMs },
  );
  sampler.start();
  lifecycle.onShutdown('overview sampler', () => sampler.stop());

  const http = await startConsoleHttp({
    host: config.httpHost,
    port: config.httpPort,
    webRoot: WEB_ROOT,
    auth: config.auth,
    tenants: () => base.tenants.list(),
    access,
    signer,
    secureCookies: config.secureCookies,
    proxyUserHeader: config.proxyUserHeader,
    proxyGroupsHeader: config.proxyGroupsHeader,
    trustedProxies: config.trustedProxies,
    logger,
    registry: base.registry,
    sampler,
    deadLetters,
    readDeadLetter: async (seq) => (await readDeadLetter(bus.jsm, seq)).detail,
    replay: async (req) =>
      replayDeadLetters(
        bus,
        await Promise.all(
          req.seqs.map(async (seq) => ({ raw: await readDeadLetter(bus.jsm, seq), edited: req.edits?.[String(seq)] })),
        ),
      ),
    shopper: (tenant, userId) => shopperView(data, tenant, userId),
    search: (tenant, query, userId, limit) => searchView(data, tenant, query, userId, limit),
    models: async (tenant) => modelsView(models, sampler.latest()?.services ?? (await probe()), tenant),
    activate: (req) => models.activate(bus, req.tenant, req.name, req.version),
    experiments: (tenant) => experimentsView(data.experiments, tenant),
    experiment: (tenant, id) => experimentView(data.experiments, tenant, id),
    stopExperiment: (req) =>
      stopExperiment(data.experiments, req.tenant, req.id, req.reason || 'stopped from the console'),
    promoteExperiment: (req) => promoteArm(data.experiments, req.tenant, req.id, req.arm ?? '', req.force ?? false),
  });
  lifecycle.onShutdown('http', () => http.close());
  const grpc = await serveGrpc(base, config, []);
  const url = `http://${config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost}:${http.port}/`;
  base.setStatus(() => ({ service: base.name, url, auth: config.auth, deadLettersIndexed: deadLetters.size }));
  return { grpc, details: { http_port: http.port, url, auth: config.auth } };
}
