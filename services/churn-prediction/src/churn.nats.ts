import { churnV1, ContentTypes, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import {
  ACK,
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

/** Alerts on `aisle.churn.v1.alert`, de-duplicated on `<tenant>:<user>:<scored_at>`. */
export function alertPublisher(bus: Bus, tenant: string, logger: Logger, registry: Registry): AlertSink {
  const alertsTotal = new Counter({
    name: 'aisle_churn_alerts_total',
    help: 'Churn alerts published',
    registers: [registry],
  });
  return {
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
  };
}

/**
 * Rescores users whose features changed (`aisle.features.v1.user_updated`). A batch that cannot be
 * scored now (feature service or store down) is redelivered with backoff; predictions a broken model
 * makes are dropped and counted, never stored, and the batch is acknowledged: retrying cannot fix them.
 */
export function startScoringConsumer(opts: {
  bus: Bus;
  service: ChurnService;
  tenant: string;
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
    durable: `churn-${opts.tenant}`,
    filterSubject: Subjects.userFeaturesUpdated,
    batchSize: opts.batchSize,
    maxInFlight: opts.batchSize * 4,
    ackWaitMs: opts.ackWaitMs,
    logger: opts.logger,
    registry: opts.registry,
    deadLetter: { publisher: opts.bus.publisher, subject: Subjects.dlq('features'), by: 'churn-prediction' },
    handleBatch: async (msgs) => {
      const outcomes: Outcome[] = [];
      const ids = new Set<string>();
      for (const m of msgs) {
        const u = decodeOrReason(() => featureV1.UserFeaturesUpdated.decode(m.data), 'UserFeaturesUpdated');
        if (typeof u === 'string') outcomes.push({ kind: 'term', reason: u });
        else {
          outcomes.push(ACK);
          if ((u.tenant || 'default') === opts.tenant && u.userId) ids.add(u.userId);
        }
      }
      try {
        const { invalid } = await opts.service.scoreUsers([...ids]);
        invalidTotal.inc(invalid);
      } catch (err) {
        // Without a model there is nothing to score: the first model's rescoring covers these users.
        if (!(err instanceof NoModelError)) throw err;
      }
      return outcomes;
    },
  });
}
