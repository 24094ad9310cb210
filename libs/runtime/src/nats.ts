import { Headers, type StreamSpec } from '@aisle/contracts';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  connect,
  credsAuthenticator,
  headers as natsHeaders,
  nanos,
  type MsgHdrs,
  type NatsConnection,
} from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { redactUrl } from './config';
import { headerValue, type AsyncJetStreamPublisher } from './js-publisher';
import type { Logger } from './logger';
import { counter, histogram } from './metrics';

export type { JetStreamClient, JetStreamManager, JsMsg, MsgHdrs, NatsConnection };
export { natsHeaders };

export interface NatsConnectOptions {
  servers: string;
  name: string;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  credsFile?: string | undefined;
  tls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined } | undefined;
  logger: Logger;
  /** How long the first connection may take (default 20 s). */
  connectTimeoutMs?: number;
  /** Told when the connection is lost (false) and when it is back (true). */
  onConnectionChange?: (connected: boolean) => void;
}

/** The reply-subject prefix of a NATS user's connections. */
export function inboxPrefixFor(user: string): string {
  return `_INBOX_${user}`;
}

/** The first connection to NATS failed; the message names the server(s) tried (without credentials). */
export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
}

/** Connects with unlimited reconnects and logs connection status changes (never credentials). */
export async function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  const tls =
    opts.tls && (opts.tls.caFile || opts.tls.certFile)
      ? {
          ...(opts.tls.caFile ? { caFile: opts.tls.caFile } : {}),
          ...(opts.tls.certFile ? { certFile: opts.tls.certFile } : {}),
          ...(opts.tls.keyFile ? { keyFile: opts.tls.keyFile } : {}),
        }
      : undefined;
  const servers = opts.servers.split(',').map((s) => s.trim());
  const nc = await connect({
    servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    // A server that hangs (rather than closes the socket) is noticed after two missed pings, not the
    // client's default of several minutes.
    pingInterval: 10_000,
    maxPingOut: 2,
    // Otherwise every request (each JetStream publish) captures a stack trace for a possible timeout
    // error: a third of ingest's CPU time in profiles.
    noAsyncTraces: true,
    ...(opts.connectTimeoutMs !== undefined ? { timeout: opts.connectTimeoutMs } : {}),
    // Replies come back on `_INBOX_<user>.*`, so that the server can let each user subscribe to its own
    // replies only (k8s/overlays/prod/authorization.conf): with the shared `_INBOX.>`, any client could
    // read the messages JetStream delivers to every other one.
    ...(opts.user ? { user: opts.user, pass: opts.password ?? '', inboxPrefix: inboxPrefixFor(opts.user) } : {}),
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.credsFile ? { authenticator: credsAuthenticator(readFileSync(opts.credsFile)) } : {}),
    ...(tls ? { tls } : {}),
  }).catch((err: unknown) => {
    const why = err instanceof Error ? err.message : String(err);
    throw new NatsConnectError(`cannot connect to NATS at ${servers.map(redactUrl).join(', ')}: ${why}`, {
      cause: err,
    });
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'error') opts.logger.warn('nats connection', { status: s.type });
      else if (s.type === 'reconnect') opts.logger.info('nats connection', { status: s.type });
      if (s.type === 'disconnect' || s.type === 'close') opts.onConnectionChange?.(false);
      else if (s.type === 'reconnect') opts.onConnectionChange?.(true);
    }
    opts.onConnectionChange?.(false);
  })();
  return nc;
}

export async function jetStreamOf(nc: NatsConnection): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
  return { js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound ||
      err.code === JetStreamApiCodes.ConsumerNotFound ||
      err.status === 404)
  );
}

/**
 * Creates or updates streams to match the specs. Idempotent and safe when several services provision
 * the same stream at once.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  specs: readonly StreamSpec[],
  opts: { replicas?: number; storage?: 'file' | 'memory' } = {},
): Promise<void> {
  for (const spec of specs) {
    const config = {
      name: spec.name,
      subjects: [...spec.subjects],
      description: spec.description,
      max_age: nanos(spec.maxAgeMs),
      duplicate_window: nanos(spec.duplicateWindowMs),
      max_msgs_per_subject: spec.maxMsgsPerSubject ?? -1,
      storage: (spec.storage ?? opts.storage) === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: opts.replicas ?? 1,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        try {
          await jsm.streams.info(spec.name);
        } catch (err) {
          if (!isNotFound(err)) throw err;
          await jsm.streams.add(config);
          break;
        }
        const { name: _name, storage: _storage, ...updatable } = config;
        await jsm.streams.update(spec.name, updatable);
        break;
      } catch (err) {
        // Another service created it between our info and add: update it on the next round.
        if (attempt < 3) continue;
        throw err;
      }
    }
  }
}

/** What to do with one consumed message. */
export type Outcome =
  | { readonly kind: 'ack' }
  | { readonly kind: 'nak'; readonly delayMs?: number }
  /** Never retry: the loop publishes it to the dead-letter subject with `reason`, then terminates it. */
  | { readonly kind: 'term'; readonly reason: string };

export const ACK: Outcome = { kind: 'ack' };

/** Exponential redelivery delay: 250 ms doubling up to `maxMs` (30 s). */
export function redeliveryDelay(deliveryCount: number, baseMs = 250, maxMs = 30_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(20, deliveryCount - 1)));
}

/** Longest a message waits between deliveries while a dependency is down. */
const TRANSIENT_MAX_DELAY_MS = 60_000;

const TRANSIENT_NAMES = new Set([
  'StoreUnavailableError',
  'UnavailableError',
  'DeadlineExceededError',
  'ResourceExhaustedError',
  // nats.js
  'TimeoutError',
  'ConnectionError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'NoRespondersError',
  'RequestError',
]);
/** gRPC UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED. */
const TRANSIENT_GRPC_CODES = new Set([14, 4, 8]);

/**
 * True for failures of a dependency (store, bus, another service) rather than of the message: retrying
 * the same message later may succeed. Our publisher's 408 (no ack), 499 (closed) and 503 (no stream)
 * count too. Everything else is taken to be the message's fault.
 */
export function isTransientError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (TRANSIENT_NAMES.has(e.name)) return true;
    const code = (e as { code?: unknown }).code;
    if (e.name === 'JetStreamPublishError' && (code === 408 || code === 499 || code === 503)) return true;
    if (typeof code === 'number' && 'metadata' in e && TRANSIENT_GRPC_CODES.has(code)) return true;
  }
  return false;
}

/** A short description of a handler failure, for the dead-letter reason. */
function failureReason(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Where a consumer sends what it gives up on: the DLQ stream with the reason in a header. */
export interface DeadLetterTarget {
  publisher: AsyncJetStreamPublisher;
  /** A subject of the DLQ stream, e.g. `Subjects.dlq('events')`. */
  subject: string;
  /** Who gave up (`Aisle-Rejected-By`). */
  by: string;
  /**
   * Where rejected input that names a user is indexed, so that forgetting the user erases its copy in
   * the DLQ and the original in its own stream (the right to be forgotten covers rejected input too).
   */
  index?: DeadLetterIndex;
}

/** A user that a message names, as the message index keys it. */
export interface NamedUser {
  tenant: string;
  userId: string;
}

export interface DeadLetterIndex {
  /** The user a rejected message names, read as leniently as its payload allows; undefined if none. */
  userOf(m: JsMsg): NamedUser | undefined;
  /** Records stream positions of the user's messages (the store's message index). */
  record(positions: Array<NamedUser & { stream: string; seq: number }>): Promise<void>;
}

/**
 * Publishes a consumed message's original bytes to the dead-letter subject with its reason (made safe
 * for a header), original subject, content type and who rejected it. Keyed on the original stream
 * sequence, so a message dead-lettered twice (redelivery, several replicas) is stored once.
 */
export async function deadLetter(target: DeadLetterTarget, m: JsMsg, reason: string): Promise<void> {
  const headers: Record<string, string> = {
    [Headers.rejectReason]: reason,
    [Headers.originalSubject]: m.subject,
    [Headers.rejectedBy]: target.by,
  };
  const ct = header(m.headers, Headers.contentType);
  if (ct) headers[Headers.contentType] = ct;
  const ack = await target.publisher.publish(target.subject, m.data, {
    msgId: `${m.info.stream}:${m.seq}`,
    headers,
    noTrace: true,
  });
  // A repeated dead-lettering is de-duplicated: its ack names the stored copy, which is indexed again.
  const user = target.index?.userOf(m);
  if (user && target.index)
    await target.index.record([
      { ...user, stream: m.info.stream, seq: m.seq },
      { ...user, stream: ack.stream, seq: ack.seq },
    ]);
}

export interface ConsumerLoopOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  durable: string;
  /** One subject filter (multiple filters need nats-server 2.10; Debian ships 2.9). */
  filterSubject: string;
  /** Most messages handed to one `handleBatch` call. */
  batchSize: number;
  /**
   * Batches handled at once (default 1: strictly in stream order). With more, a batch may start while
   * earlier ones still wait on I/O; handlers must then not depend on cross-batch order.
   */
  concurrency?: number;
  /** Most unacknowledged messages at once (server-side `max_ack_pending` too). */
  maxInFlight: number;
  ackWaitMs?: number;
  /**
   * Per-instance (broadcast) consumers: start at this time instead of the stream's beginning, and let the
   * server delete the durable after an hour without a subscriber (pods come and go).
   */
  startAt?: Date;
  /**
   * Handles a batch in stream order and returns one outcome per message. Throwing retries the batch:
   * a transient error (`isTransientError`: store or bus down) naks it with backoff; any other error
   * is tried again one message at a time, to find the message at fault.
   */
  handleBatch: (msgs: readonly JsMsg[]) => Promise<Outcome[]>;
  /** Where `term` outcomes and messages the loop gives up on go. */
  deadLetter: DeadLetterTarget;
  /**
   * Deliveries of a message that fails on its own (not because a dependency is down) before it is
   * dead-lettered (default 5).
   */
  maxDeliveries?: number;
  /**
   * Server-side `max_deliver` (default 200): the bound for transient failures too. With the backoff
   * capped at 60 s, 200 deliveries last about 3 hours of a dependency outage; the last one, if it
   * fails, is dead-lettered with its reason, never dropped silently.
   */
  maxDeliver?: number;
  logger: Logger;
  registry?: Registry;
}

export interface ConsumerLoop {
  /** Stops pulling, finishes the batches in flight (and their acks), then resolves. */
  stop(): Promise<void>;
}

function consumerMetrics(registry: Registry | undefined, durable: string) {
  if (!registry) return undefined;
  const outcomes = counter<'consumer' | 'outcome'>(registry, {
    name: 'aisle_consumer_messages_total',
    help: 'Consumed messages by outcome',
    labelNames: ['consumer', 'outcome'],
  });
  const batches = histogram<'consumer'>(registry, {
    name: 'aisle_consumer_batch_seconds',
    help: 'Time to handle one consumed batch',
    labelNames: ['consumer'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  });
  return {
    count: (outcome: string, n: number) => outcomes.inc({ consumer: durable, outcome }, n),
    time: () => batches.startTimer({ consumer: durable }),
  };
}

/** Creates the durable pull consumer (or updates it to the given settings). */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  cfg: Partial<ConsumerConfig> & { filter_subject: string },
): Promise<void> {
  const config: Partial<ConsumerConfig> = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ...cfg,
  };
  try {
    await jsm.consumers.info(stream, durable);
    const { durable_name: _d, deliver_policy: _p, opt_start_time: _t, ...updatable } = config;
    await jsm.consumers.update(stream, durable, updatable);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(stream, config);
  }
}

/**
 * A bounded, explicit-ack consumer loop over a durable pull consumer. Messages that arrive together are
 * handled as one batch (up to `batchSize`), batches run one at a time in stream order, and at most
 * `maxInFlight` messages are unacknowledged. Nothing is acked before its handler succeeded.
 */
export async function startConsumerLoop(opts: ConsumerLoopOptions): Promise<ConsumerLoop> {
  const maxDeliver = Math.max(1, opts.maxDeliver ?? 200);
  const maxDeliveries = Math.min(maxDeliver, Math.max(1, opts.maxDeliveries ?? 5));
  await ensureConsumer(opts.jsm, opts.stream, opts.durable, {
    filter_subject: opts.filterSubject,
    max_deliver: maxDeliver,
    max_ack_pending: opts.maxInFlight,
    ack_wait: nanos(opts.ackWaitMs ?? 30_000),
    ...(opts.startAt
      ? {
          deliver_policy: DeliverPolicy.StartTime,
          opt_start_time: opts.startAt.toISOString(),
          inactive_threshold: nanos(3_600_000),
        }
      : {}),
  });
  const consumer = await opts.js.consumers.get(opts.stream, opts.durable);
  const metrics = consumerMetrics(opts.registry, opts.durable);
  const log = opts.logger.child({ consumer: opts.durable });

  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const slots = Math.max(1, opts.concurrency ?? 1);
  const queue: JsMsg[][] = [];
  const running = new Set<Promise<void>>();
  let inFlight = 0;

  /** What to do with a message whose handling threw `err`. */
  const failed = (m: JsMsg, err: unknown): Outcome => {
    const n = m.info.deliveryCount;
    const transient = isTransientError(err);
    if (n < (transient ? maxDeliver : maxDeliveries))
      return { kind: 'nak', delayMs: redeliveryDelay(n, 250, transient ? TRANSIENT_MAX_DELAY_MS : 30_000) };
    return { kind: 'term', reason: `${opts.durable}: ${failureReason(err)} (gave up after ${n} deliveries)` };
  };

  /** Handles a batch; a non-transient failure is retried message by message so that only the culprit fails. */
  const outcomesOf = async (batch: JsMsg[]): Promise<Outcome[]> => {
    const run = async (msgs: JsMsg[]): Promise<Outcome[]> => {
      const outcomes = await opts.handleBatch(msgs);
      if (outcomes.length !== msgs.length)
        throw new Error(`handler returned ${outcomes.length} outcomes for ${msgs.length} messages`);
      return outcomes;
    };
    try {
      return await run(batch);
    } catch (err) {
      if (isTransientError(err) || batch.length === 1) {
        log.warn('batch failed; redelivering with backoff', { size: batch.length, err });
        return batch.map((m) => failed(m, err));
      }
      log.warn('batch failed; retrying its messages one at a time', { size: batch.length, err });
      const out: Outcome[] = [];
      for (const m of batch) {
        try {
          out.push(...(await run([m])));
        } catch (e) {
          log.warn('message failed', { subject: m.subject, seq: m.seq, deliveries: m.info.deliveryCount, err: e });
          out.push(failed(m, e));
        }
      }
      return out;
    }
  };

  const settle = async (batch: JsMsg[], outcomes: Outcome[]): Promise<Outcome[]> => {
    // Dead letters first: a message is terminated only once its copy is in the DLQ stream.
    const settled = await Promise.all(
      batch.map(async (m, i): Promise<Outcome> => {
        let o: Outcome = outcomes[i] ?? { kind: 'nak' };
        // The server delivers no more after its last try: dead-letter rather than drop it silently.
        if (o.kind === 'nak' && m.info.deliveryCount >= maxDeliver)
          o = { kind: 'term', reason: `${opts.durable}: not processed after ${maxDeliver} deliveries` };
        if (o.kind !== 'term') return o;
        try {
          await deadLetter(opts.deadLetter, m, o.reason);
          return o;
        } catch (err) {
          log.error('dead-lettering failed; redelivering', { subject: m.subject, seq: m.seq, err });
          return { kind: 'nak', delayMs: redeliveryDelay(m.info.deliveryCount, 250, TRANSIENT_MAX_DELAY_MS) };
        }
      }),
    );
    batch.forEach((m, i) => {
      const o = settled[i] as Outcome;
      try {
        settleOne(m, o);
      } catch (err) {
        // The connection closed under us: the server redelivers after ack_wait.
        log.warn('could not settle a message', { subject: m.subject, seq: m.seq, err });
      }
    });
    return settled;
  };

  const settleOne = (m: JsMsg, o: Outcome): void => {
    switch (o.kind) {
      case 'ack':
        m.ack();
        break;
      case 'nak':
        m.nak(o.delayMs ?? redeliveryDelay(m.info.deliveryCount));
        break;
      case 'term':
        // nats-server 2.9 ignores "+TERM <reason>" (the reason needs 2.10.4): it is in the DLQ header.
        log.warn('dead-lettered message', { subject: m.subject, seq: m.seq, reason: headerValue(o.reason, 256) });
        m.term();
        break;
    }
  };

  const handle = async (batch: JsMsg[]): Promise<void> => {
    const end = metrics?.time();
    const outcomes = await settle(batch, await outcomesOf(batch));
    if (metrics) {
      const counts = new Map<string, number>();
      for (const o of outcomes) counts.set(o.kind, (counts.get(o.kind) ?? 0) + 1);
      for (const [k, n] of counts) metrics.count(k, n);
    }
    end?.();
  };

  const startQueued = (): void => {
    while (running.size < slots && queue.length > 0) {
      const batch = queue.shift() as JsMsg[];
      const p: Promise<void> = handle(batch).finally(() => {
        inFlight -= batch.length;
        running.delete(p);
        startQueued();
      });
      running.add(p);
    }
  };
  /** Resolves when at least one batch finished (or nothing is running). */
  const someDone = (): Promise<unknown> => (running.size > 0 ? Promise.race(running) : Promise.resolve());
  const drained = async (): Promise<void> => {
    while (running.size > 0 || queue.length > 0) await someDone();
  };

  const pull = async (): Promise<void> => {
    while (!stopped) {
      let pending: JsMsg[] = [];
      let scheduled = false;
      const flush = (): void => {
        scheduled = false;
        if (pending.length === 0) return;
        inFlight += pending.length;
        queue.push(pending);
        pending = [];
        startQueued();
      };
      try {
        messages = await consumer.consume({
          max_messages: Math.max(opts.batchSize, Math.min(opts.maxInFlight, opts.batchSize * 4)),
        });
        for await (const m of messages) {
          pending.push(m);
          if (pending.length >= opts.batchSize) flush();
          else if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
          while (inFlight + pending.length >= opts.maxInFlight) {
            flush();
            await someDone();
          }
        }
        flush();
      } catch (err) {
        flush();
        if (!stopped) log.warn('consume interrupted; resubscribing', { err });
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 500));
    }
  };
  const pulling = pull();

  return {
    async stop() {
      stopped = true;
      messages?.stop();
      await pulling;
      await drained();
    },
  };
}

/** Reads a header, treating NATS's empty-string-for-missing as undefined. */
export function header(h: MsgHdrs | undefined, key: string): string | undefined {
  const v = h?.get(key);
  return v ? v : undefined;
}
