import { churnV1, ContentTypes, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import { CHURN_FEATURES, createSession } from '@aisle/ml';
import {
  ACK,
  connectBus,
  Counter,
  createGrpcClient,
  ModelRegistry,
  outgoingCredentials,
  serveGrpc,
  startConsumerLoop,
  type ServiceBase,
  type StartedService,
} from '@aisle/runtime';
import { openStore } from '@aisle/store';
import { BANDS, churnGrpcService } from './churn.grpc';
import { ChurnService, NoModelError, type ChurnModel, type UserActivity } from './churn.service';
import type { ChurnConfig } from './config';

/** The churn-prediction service's composition root (`main.ts` runs it as a process). */
export async function startChurn(base: ServiceBase, config: ChurnConfig): Promise<StartedService> {
  const { logger, lifecycle } = base;
  const store = await openStore(config.storeUrl);
  lifecycle.onShutdown('store', () => store.close());
  const bus = await connectBus(base, config, [Streams.FEATURES, Streams.CHURN, Streams.MODELS]);
  const features = createGrpcClient(featureV1.FeatureServiceService, config.featureAddr, {
    deadlineMs: 5000,
    credentials: outgoingCredentials(config),
  });
  lifecycle.onShutdown('feature client', () => features.close());
  const alertsTotal = new Counter({
    name: 'aisle_churn_alerts_total',
    help: 'Churn alerts published',
    registers: [base.registry],
  });
  const tenant = config.tenant;

  const service = new ChurnService(
    {
      users: async (ids) => {
        const res = await features.getUserFeatures({ tenant, userIds: [...ids], recentLimit: 0 });
        const users = res.users.map((u): UserActivity => ({
          userId: u.userId,
          known: u.known,
          firstSeen: u.firstSeenAt?.getTime() ?? 0,
          lastSeen: u.lastSeenAt?.getTime() ?? 0,
          sessions: u.sessions,
          events: u.counts
            ? u.counts.view +
              u.counts.click +
              u.counts.addToCart +
              u.counts.removeFromCart +
              u.counts.purchase +
              u.counts.search
            : 0,
          purchases: u.purchases,
          spend: u.spend,
          recent: u.recent.map((r) => ({ type: r.type, at: r.occurredAt?.getTime() ?? 0 })),
        }));
        return { users, asOf: res.asOf?.getTime() ?? 0 };
      },
      listUsers: (pageSize, pageToken) => features.listUsers({ tenant, pageSize, pageToken }),
    },
    {
      getMany: (ids) => store.churnScores.getMany(tenant, ids),
      upsertMany: (rs) => store.churnScores.upsertMany(rs.map((r) => ({ ...r, tenant }))),
      listAtRisk: (minRisk, limit, after) => store.churnScores.listAtRisk(tenant, minRisk, limit, after),
    },
    {
      alert: async (a) => {
        const payload = churnV1.Alert.encode({
          ...a,
          tenant,
          band: BANDS[a.band],
          topFactors: a.factors,
          scoredAt: new Date(a.scoredAt),
        }).finish();
        await bus.publisher.publish(Subjects.churnAlert, payload, {
          msgId: `${tenant}:${a.userId}:${a.scoredAt}`,
          headers: { [Headers.contentType]: ContentTypes.protobuf },
        });
        alertsTotal.inc();
        logger.info('churn alert', { user_id: a.userId, risk: a.risk });
      },
    },
    { threshold: config.threshold, hysteresis: config.hysteresis },
  );

  const grpc = await serveGrpc(base, config, [churnGrpcService(service, base)]);
  const serviceName = 'aisle.churn.v1.ChurnService';
  const registry = await ModelRegistry.open(bus.nc, { replicas: config.natsStreamReplicas });
  let release: (() => Promise<void>) | undefined;
  const rescore = async (why: string) => {
    if (!service.modelVersion) return;
    const r = await service.rescoreAll(config.batchSize);
    logger.info('rescored users', { why, ...r });
  };
  const activate = async () => {
    const artifact = await registry.active(tenant, 'churn');
    if (!artifact || artifact.meta.version === service.modelVersion) return;
    const session = await createSession(artifact.onnx, { providers: ['cpu'] });
    const model: ChurnModel = {
      version: artifact.meta.version,
      predict: async (rows) => {
        if (rows.length === 0) return [];
        const F = CHURN_FEATURES.length;
        const x = new Float32Array(rows.length * F);
        rows.forEach((r, i) => x.set(r, i * F));
        const out = await session.run({ features: { type: 'float32', data: x, dims: [rows.length, F] } });
        const risk = out['risk']?.data as Float32Array;
        const contributions = out['contributions']?.data as Float32Array;
        return rows.map((_, i) => ({
          risk: risk[i] as number,
          contributions: contributions.slice(i * F, (i + 1) * F),
        }));
      },
    };
    const old = release;
    service.setModel(model);
    release = () => session.release();
    grpc.setServiceServing(serviceName, true);
    logger.info('model active', { model: 'churn', version: model.version });
    if (old) setTimeout(() => void old(), 5_000).unref();
    await rescore('new model');
  };
  const watcher = registry.watch((meta) => {
    if (meta.tenant === tenant && meta.name === 'churn')
      void activate().catch((err: unknown) => logger.error('churn model load failed', { err }));
  });
  lifecycle.onShutdown('model watcher', () => watcher.unsubscribe());
  await activate().catch((err: unknown) => logger.error('churn model load failed', { err }));

  const consumer = await startConsumerLoop({
    js: bus.js,
    jsm: bus.jsm,
    stream: Streams.FEATURES.name,
    durable: `churn-${tenant}`,
    filterSubject: Subjects.userFeaturesUpdated,
    batchSize: config.batchSize,
    maxInFlight: config.batchSize * 4,
    ackWaitMs: config.ackWaitMs,
    logger,
    registry: base.registry,
    handleBatch: async (msgs) => {
      const ids = [
        ...new Set(
          msgs
            .map((m) => featureV1.UserFeaturesUpdated.decode(m.data))
            .filter((u) => (u.tenant || 'default') === tenant)
            .map((u) => u.userId),
        ),
      ];
      try {
        await service.scoreUsers(ids);
      } catch (err) {
        // Without a model there is nothing to score: the first model's rescoring covers these users.
        if (!(err instanceof NoModelError)) throw err;
      }
      return msgs.map(() => ACK);
    },
  });
  lifecycle.onShutdown('consumer', () => consumer.stop());
  const timer = setInterval(
    () => void rescore('periodic').catch((err: unknown) => logger.warn('periodic rescoring failed', { err })),
    config.rescoreIntervalMs,
  );
  lifecycle.onShutdown('rescoring', () => clearInterval(timer));
  base.setStatus(() => ({ service: base.name, model: service.modelVersion ?? null, threshold: config.threshold }));
  return {
    grpc,
    details: { model: service.modelVersion ?? null },
    notReady: service.modelVersion ? [] : [serviceName],
  };
}
