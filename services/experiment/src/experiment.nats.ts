import {
  clickstreamV1,
  ContentTypes,
  experimentV1,
  Headers,
  InvalidArgumentError,
  NotFoundError,
  decodeServedHead,
  Streams,
  Subjects,
} from '@aisle/contracts';
import { isPinnable, revalidateExperiment, type Experiment } from '@aisle/experiments';
import {
  ACK,
  Counter,
  ExperimentBucket,
  ExperimentConflictError,
  ModelVersionNotFoundError,
  startConsumerLoop,
  type ModelName,
  type ModelRegistry,
  type AsyncJetStreamPublisher,
  type ConsumerLoop,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type Logger,
  type Outcome,
  type Registry,
} from '@aisle/runtime';
import {
  DefinitionConflictError,
  type DefinitionStore,
  type ModelActivation,
  type ResultSink,
} from './experiment.service';
import type { JoinRepository } from './experiment.store';
import {
  candidateExperiments,
  outcomeOf,
  servedInExperiment,
  type OutcomeEvent,
  type ServedInExperiment,
} from './join';

/** The KV bucket as the service's definition store (conflicts become the domain's error). */
export function definitionStore(bucket: ExperimentBucket): DefinitionStore {
  const mapConflict = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ExperimentConflictError) throw new DefinitionConflictError(err.message, { cause: err });
      throw err;
    }
  };
  return {
    get: (tenant, id) => bucket.get(tenant, id),
    list: (tenant) => bucket.list(tenant),
    create: (e) => mapConflict(() => bucket.create(e)),
    update: (e, revision) => mapConflict(() => bucket.update(e, revision)),
  };
}

/** Promotion through the model registry: the same activation (pointer + announcement) services hot-load. */
export function modelActivation(registry: ModelRegistry, publisher: AsyncJetStreamPublisher): ModelActivation {
  return {
    activate: async (tenant, pins) => {
      const all = Object.entries(pins);
      // All of the arm or nothing: every version is checked (and downloaded) before any pointer moves.
      for (const [model, version] of all) {
        // Definitions are validated: an arm pins only what ranking can serve in an arm.
        if (!isPinnable(model))
          throw new InvalidArgumentError(`arm.models.${model}`, `'${model}' versions cannot be pinned per arm`);
        const meta = await registry.versionMeta(tenant, model, version);
        if (!meta) throw new NotFoundError(`${tenant}/${model} has no version ${version}`);
        await registry.load(meta);
      }
      for (const [model, version] of all) {
        try {
          await registry.activate(publisher, tenant, model as ModelName, version);
        } catch (err) {
          if (err instanceof ModelVersionNotFoundError) throw new NotFoundError(err.message, { cause: err });
          throw err;
        }
      }
    },
  };
}

/** Results on `aisle.experiment.v1.result`, de-duplicated by JetStream on (experiment, content). */
export function resultPublisher(publisher: AsyncJetStreamPublisher): ResultSink {
  return {
    publish: async (r) => {
      const payload = experimentV1.ExperimentResult.encode(r).finish();
      await publisher.publish(Subjects.experimentResult, payload, {
        msgId: `${r.tenant}:${r.experimentId}:${r.asOf?.getTime() ?? 0}:${r.state}:${r.stopReason.length}`,
        headers: { [Headers.contentType]: ContentTypes.protobuf, [Headers.tenant]: r.tenant },
        noTrace: true,
      });
    },
  };
}

/** The definitions every replica follows from the bucket (the consumers need them to route outcomes). */
export class DefinitionCache {
  private current: Experiment[] = [];

  constructor(private readonly clock: () => number = () => Date.now()) {}

  set(stored: Iterable<{ experiment: experimentV1.Experiment }>): void {
    const out: Experiment[] = [];
    for (const s of stored)
      try {
        out.push(revalidateExperiment(s.experiment, this.clock()));
      } catch {
        continue;
      }
    this.current = out;
  }

  get all(): readonly Experiment[] {
    return this.current;
  }
}

/**
 * How far the served consumer has read, in stream time: an outcome whose request is unknown is given up
 * only once every impression published up to its own time (plus a grace) has been read. So the join does
 * not depend on which stream is consumed first, and replaying both from the start gives the same join.
 */
export class ServedProgress {
  private readUpTo = 0;
  private caughtUpAt = 0;

  /** After a batch is stored: the stream time of its last message. */
  advanced(streamTimeMs: number): void {
    this.readUpTo = Math.max(this.readUpTo, streamTimeMs);
  }

  /**
   * The server said nothing was pending or unacknowledged when asked at `at`. (A message's own "nothing
   * pending" is not enough: it is as of its delivery, and a batch may wait in the queue while more arrive.)
   */
  caughtUp(at: number): void {
    this.caughtUpAt = Math.max(this.caughtUpAt, at);
  }

  /** Every served message published until `t` has been read. */
  covers(t: number): boolean {
    return Math.max(this.readUpTo, this.caughtUpAt) >= t;
  }
}

interface ConsumerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  logger: Logger;
  registry: Registry;
  repository: JoinRepository;
  batchSize: number;
  maxInFlight: number;
  ackWaitMs: number;
  /** For the dead letters: what the consumers give up on. */
  publisher: AsyncJetStreamPublisher;
}

const streamTimeMs = (m: JsMsg) => Math.floor(m.info.timestampNanos / 1e6);

function counter(registry: Registry, name: string, help: string): Counter<'result'> {
  return (
    (registry.getSingleMetric(name) as Counter<'result'> | undefined) ??
    new Counter({ name, help, labelNames: ['result'], registers: [registry] })
  );
}

/**
 * Keeps served responses that were in an experiment; the rest is acknowledged untouched, and so are those
 * served to a forgotten user before the request (in flight when it came, or replayed): they would bring the
 * user's impressions back.
 */
export async function startServedConsumer(
  deps: ConsumerDeps & {
    progress: ServedProgress;
    durable?: string;
    /** The indices of responses served to forgotten users no later than their request (`ForgottenUsers.dropped`). */
    forgotten?: (
      served: ReadonlyArray<{ tenant: string; userId: string; occurredAt: number }>,
    ) => Promise<ReadonlySet<number>>;
  },
): Promise<ConsumerLoop> {
  const served = counter(
    deps.registry,
    'aisle_experiment_served_total',
    'Served responses read, by result (kept, not_in_experiment, forgotten: served to a forgotten user, dropped; invalid)',
  );
  return startConsumerLoop({
    ...deps,
    stream: Streams.RANKING.name,
    durable: deps.durable ?? 'experiment-served',
    filterSubject: Subjects.rankingServed,
    deadLetter: { publisher: deps.publisher, subject: Subjects.dlq('ranking'), by: 'experiment' },
    handleBatch: async (msgs) => {
      const outcomes: Outcome[] = [];
      const inExperiment: ServedInExperiment[] = [];
      const users: Array<{ tenant: string; userId: string; occurredAt: number }> = [];
      for (const m of msgs) {
        let s: ServedInExperiment | undefined;
        let userId = '';
        try {
          const decoded = decodeServedHead(m.data);
          s = decoded && servedInExperiment(decoded);
          userId = decoded?.userId ?? '';
        } catch (err) {
          served.inc({ result: 'invalid' });
          outcomes.push({ kind: 'term', reason: `payload: not a Served message (${String(err)})` });
          continue;
        }
        outcomes.push(ACK);
        if (s) {
          inExperiment.push(s);
          users.push({ tenant: s.tenant, userId, occurredAt: s.record.servedAt });
        } else served.inc({ result: 'not_in_experiment' });
      }
      const dropped = deps.forgotten && users.length > 0 ? await deps.forgotten(users) : new Set<number>();
      const kept = inExperiment.filter((_, i) => !dropped.has(i));
      await deps.repository.saveServed(kept);
      served.inc({ result: 'kept' }, kept.length);
      served.inc({ result: 'forgotten' }, dropped.size);
      const last = msgs[msgs.length - 1];
      if (last) deps.progress.advanced(streamTimeMs(last));
      return outcomes;
    },
  });
}

/**
 * Joins clicks, add-to-carts and purchases that name a request to the experiment's stored request. An
 * outcome whose request is not stored yet waits (nak with a delay) until the served consumer has read past
 * it; then it is known not to belong to an experiment and is acknowledged.
 */
export async function startOutcomeConsumer(
  deps: ConsumerDeps & {
    progress: ServedProgress;
    definitions: DefinitionCache;
    servedGraceMs: number;
    retryDelayMs: number;
    durable?: string;
  },
): Promise<ConsumerLoop> {
  const joined = counter(
    deps.registry,
    'aisle_experiment_outcomes_total',
    'Outcomes with a request id during experiments, by result (joined, not_in_experiment, waiting)',
  );
  return startConsumerLoop({
    ...deps,
    stream: Streams.EVENTS.name,
    durable: deps.durable ?? 'experiment-outcomes',
    filterSubject: Subjects.eventsAll,
    deadLetter: { publisher: deps.publisher, subject: Subjects.dlq('events'), by: 'experiment' },
    handleBatch: async (msgs) => {
      const outcomes: Outcome[] = msgs.map(() => ACK);
      const pending: Array<{ index: number; event: OutcomeEvent; experimentIds: string[] }> = [];
      msgs.forEach((m, index) => {
        if (m.subject === Subjects.eventsItem) return;
        let event: OutcomeEvent | undefined;
        try {
          event = outcomeOf(clickstreamV1.Event.decode(m.data));
        } catch {
          // Ingest validated it; a payload that does not decode is the feature consumer's to dead-letter.
          return;
        }
        if (!event) return;
        const candidates = candidateExperiments(deps.definitions.all, event.tenant, event.outcome.occurredAt);
        if (candidates.length > 0) pending.push({ index, event, experimentIds: candidates.map((e) => e.id) });
      });
      const found = await deps.repository.attachOutcomes(pending);
      for (const p of pending) {
        if (found.has(p.event)) {
          joined.inc({ result: 'joined' });
          continue;
        }
        const m = msgs[p.index] as JsMsg;
        if (deps.progress.covers(streamTimeMs(m) + deps.servedGraceMs)) {
          joined.inc({ result: 'not_in_experiment' });
        } else {
          joined.inc({ result: 'waiting' });
          outcomes[p.index] = { kind: 'nak', delayMs: deps.retryDelayMs };
        }
      }
      return outcomes;
    },
  });
}

/**
 * While the served consumer has nothing to read it sees no messages to learn that from: ask the server
 * now and then whether it is caught up.
 */
export function watchServedBacklog(
  jsm: JetStreamManager,
  durable: string,
  progress: ServedProgress,
  intervalMs: number,
  logger: Logger,
): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const asked = Date.now();
    jsm.consumers
      .info(Streams.RANKING.name, durable)
      .then((info) => {
        if (info.num_pending === 0 && info.num_ack_pending === 0) progress.caughtUp(asked);
      })
      .catch((err: unknown) => logger.debug('served backlog check failed', { err }))
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export { ExperimentBucket };
