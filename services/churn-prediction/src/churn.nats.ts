import { churnV1, ContentTypes, DEFAULT_TENANT, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import {
  ACK,
  counterIn,
  Counter,
  decodeOrReason,
  startConsumerLoop,
  type Bus,
  type ConsumerLoop,
  type Logger,
  type Outcome,
  type Registry,
} from '@aisle/runtime';
import { BANDS } from './churn.grpc';
import { NoModelError, type AlertSink, type ChurnService } from './churn.service';

/**
 * Alerts on `aisle.churn.v1.alert`, de-duplicated on `<tenant>:<user>:<scored_at>`; where each was stored is
 * recorded in the message index (`index`), so that forgetting the user erases their alerts from CHURN.
 */
export function alertPublisher(
  bus: Bus,
  tenant: string,
  logger: Logger,
  registry: Registry,
  index?: (positions: Array<{ tenant: string; userId: string; stream: string; seq: number }>) => Promise<void>,
): AlertSink {
  const alertsTotal = counterIn(registry, 'aisle_churn_alerts_total', 'Churn alerts published', []);
  return {
    alert: async (a) => {
      const payload = churnV1.Alert.encode({
        ...a,
        tenant,
        band: BANDS[a.band],
        topFactors: a.factors,
        scoredAt: new Date(a.scoredAt),
      }).finish();
      const ack = await bus.publisher.publish(Subjects.churnAlert, payload, {
        msgId: `${tenant}:${a.userId}:${a.scoredAt}`,
        headers: { [Headers.contentType]: ContentTypes.protobuf },
      });
      await index?.([{ tenant, userId: a.userId, stream: ack.stream, seq: ack.seq }]);
      alertsTotal.inc();
      logger.info('churn alert', { user_id: a.userId, risk: a.risk });
    },
  };
}

/**
 * Rescores users whose features changed (`aisle.features.v1.user_updated`). A batch that cannot be
 * scored now (feature service or store down) is redelivered with backoff; predictions a broken model
 * makes are dropped and counted, never stored, and the batch is acknowledged: retrying cannot fix them.
 */
export function startScoringConsumer(opts: {
  bus: Bus;
  /** The tenant's scorer; undefined for a tenant not served here (its notifications are skipped). */
  serviceOf: (tenant: string) => Promise<ChurnService | undefined>;
  batchSize: number;
  ackWaitMs: number;
  logger: Logger;
  registry: Registry;
}): Promise<ConsumerLoop> {
  const invalidTotal = new Counter({
    name: 'aisle_churn_invalid_predictions_total',
    help: 'Model outputs that were not probabilities (dropped, not stored)',
    registers: [opts.registry],
  });
  return startConsumerLoop({
    js: opts.bus.js,
    jsm: opts.bus.jsm,
    stream: Streams.FEATURES.name,
    durable: 'churn',
    filterSubject: Subjects.userFeaturesUpdated,
    batchSize: opts.batchSize,
    maxInFlight: opts.batchSize * 4,
    ackWaitMs: opts.ackWaitMs,
    logger: opts.logger,
    registry: opts.registry,
    deadLetter: { publisher: opts.bus.publisher, subject: Subjects.dlq('features'), by: 'churn-prediction' },
    handleBatch: async (msgs) => {
      const outcomes: Outcome[] = [];
      const byTenant = new Map<string, Set<string>>();
      for (const m of msgs) {
        const u = decodeOrReason(() => featureV1.UserFeaturesUpdated.decode(m.data), 'UserFeaturesUpdated');
        if (typeof u === 'string') outcomes.push({ kind: 'term', reason: u });
        else {
          outcomes.push(ACK);
          const tenant = u.tenant || DEFAULT_TENANT;
          if (u.userId) byTenant.set(tenant, (byTenant.get(tenant) ?? new Set<string>()).add(u.userId));
        }
      }
      for (const [tenant, ids] of byTenant) {
        const service = await opts.serviceOf(tenant);
        if (!service) continue;
        try {
          const { invalid } = await service.scoreUsers([...ids]);
          invalidTotal.inc(invalid);
        } catch (err) {
          // Without a model there is nothing to score: the first model's rescoring covers these users.
          if (!(err instanceof NoModelError)) throw err;
        }
      }
      return outcomes;
    },
  });
}
