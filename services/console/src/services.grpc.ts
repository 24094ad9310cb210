import { churnV1, experimentV1, featureV1, rankingV1 } from '@aisle/contracts';
import { createGrpcClient, grpc, isGrpcError, type GrpcClient } from '@aisle/runtime';
import type { ServiceHealth } from './api';
import type { WatchedService } from './config';
import type { ExperimentPort } from './experiments';
import { modelsFromStatus } from './overview';
import type { DataPorts } from './views';

/** The gRPC service each watched process hosts (its health has a per-service entry under this name). */
const MAIN_SERVICE: Record<WatchedService, string> = {
  ingest: 'aisle.ingest.v1.IngestService',
  feature: 'aisle.feature.v1.FeatureService',
  embedding: 'aisle.embedding.v1.EmbeddingService',
  ranking: 'aisle.ranking.v1.RankingService',
  churn: 'aisle.churn.v1.ChurnService',
  experiment: 'aisle.experiment.v1.ExperimentService',
};

type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const HEALTH_STATUS: readonly HealthStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/**
 * grpc.health.v1.Health/Check. Its two messages are one field each (`string service = 1`,
 * `ServingStatus status = 1`), so they are written and read here rather than loading health.proto.
 */
function healthCheck(
  address: string,
  service: string,
  deadlineMs: number,
  credentials: grpc.ChannelCredentials,
): Promise<HealthStatus> {
  const client = new grpc.Client(address, credentials);
  const name = Buffer.from(service, 'utf8');
  const request = name.length > 0 ? Buffer.concat([Buffer.from([0x0a, name.length]), name]) : Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer): HealthStatus =>
        b.length >= 2 && b[0] === 0x08 ? (HEALTH_STATUS[b[1] ?? 0] ?? 'UNKNOWN') : 'UNKNOWN',
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, status) => {
        client.close();
        if (err) reject(err);
        else resolve(status ?? 'UNKNOWN');
      },
    );
  });
}

const short = (err: unknown) =>
  (isGrpcError(err) ? err.details || err.message : err instanceof Error ? err.message : String(err)).split('\n')[0] ??
  '';

/** Health (grpc.health.v1, process and main service) and loaded model versions (/status) of one service. */
async function probe(
  name: WatchedService,
  target: { addr: string; statusUrl: string },
  credentials: grpc.ChannelCredentials,
  deadlineMs: number,
): Promise<ServiceHealth> {
  const base = { service: name, address: target.addr };
  const statusCall = fetch(target.statusUrl, { signal: AbortSignal.timeout(deadlineMs) })
    .then(async (r) => (r.ok ? modelsFromStatus(await r.json()) : []))
    .catch(() => []);
  try {
    const [process, main] = await Promise.all([
      healthCheck(target.addr, '', deadlineMs, credentials),
      healthCheck(target.addr, MAIN_SERVICE[name], deadlineMs, credentials).catch(() => 'UNKNOWN' as const),
    ]);
    const models = await statusCall;
    if (process !== 'SERVING') return { ...base, status: 'NOT_SERVING', detail: 'process not serving', models };
    if (main === 'NOT_SERVING')
      return { ...base, status: 'NOT_SERVING', detail: `${MAIN_SERVICE[name]} waits for its models`, models };
    return { ...base, status: 'SERVING', detail: '', models };
  } catch (err) {
    await statusCall;
    return { ...base, status: 'UNREACHABLE', detail: short(err), models: [] };
  }
}

export function probeServices(
  targets: Record<WatchedService, { addr: string; statusUrl: string }>,
  credentials: grpc.ChannelCredentials,
  deadlineMs: number,
): () => Promise<ServiceHealth[]> {
  return () =>
    Promise.all(
      (Object.keys(targets) as WatchedService[]).map((name) => probe(name, targets[name], credentials, deadlineMs)),
    );
}

export interface ConsoleClients extends DataPorts {
  experiments: ExperimentPort;
  close(): void;
}

/** Clients of feature, ranking, churn-prediction and experiment for the shopper, search and experiments pages. */
export function createDataClients(
  targets: Record<WatchedService, { addr: string }>,
  credentials: grpc.ChannelCredentials,
  deadlineMs: number,
): ConsoleClients {
  const opts = { deadlineMs, credentials };
  const feature: GrpcClient<typeof featureV1.FeatureServiceService> = createGrpcClient(
    featureV1.FeatureServiceService,
    targets.feature.addr,
    opts,
  );
  const ranking = createGrpcClient(rankingV1.RankingServiceService, targets.ranking.addr, opts);
  const churn = createGrpcClient(churnV1.ChurnServiceService, targets.churn.addr, opts);
  const experiment = createGrpcClient(experimentV1.ExperimentServiceService, targets.experiment.addr, opts);
  return {
    userFeatures: (tenant, userId) => feature.getUserFeatures({ tenant, userIds: [userId], recentLimit: 50 }),
    items: async (tenant, itemIds) => (await feature.getItemFeatures({ tenant, itemIds, coVisitLimit: 0 })).items,
    churn: async (tenant, userId) => (await churn.predict({ tenant, userIds: [userId] })).scores[0],
    recommend: (tenant, userId, limit) =>
      ranking.recommend({
        tenant,
        userId,
        limit,
        filters: undefined,
        context: {},
        explain: true,
        sessionItemIds: [],
      }),
    search: (tenant, query, userId, limit) =>
      ranking.search({ tenant, query, userId, limit, filters: undefined, explain: true }),
    experiments: {
      list: async (tenant) => (await experiment.list({ tenant })).experiments,
      get: async (tenant, id) => (await experiment.get({ tenant, id })).experiment,
      results: async (tenant, id) => (await experiment.getResults({ tenant, id })).result,
      stop: async (tenant, id, reason) => (await experiment.stop({ tenant, id, reason })).experiment,
      promote: (tenant, id, arm, force) => experiment.promote({ tenant, id, arm, force }),
    },
    close: () => {
      feature.close();
      ranking.close();
      churn.close();
      experiment.close();
    },
  };
}
