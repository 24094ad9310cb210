import { churnV1, ContentTypes, Headers, Streams, Subjects } from '@aisle/contracts';
import {
  header,
  type ModelRegistry,
  natsHeaders,
  type Bus,
  type JetStreamManager,
  type Logger,
  type ModelName,
} from '@aisle/runtime';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Alert, ConsumerLag, DeadLetterDetail, DeadLetterSummary, ReplayResult } from './api';
import { describePayload, reasonKind, replayable, tenantOf, toHex, type DeadLetterIndex } from './dead-letters';
import type { RegistryPort } from './views';

export class DeadLetterNotFoundError extends Error {
  override readonly name = 'DeadLetterNotFoundError';
}

export class NotReplayableError extends Error {
  override readonly name = 'NotReplayableError';
}

const STREAM_NAMES = Object.values(Streams).map((s) => s.name);

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}

/** Sequence numbers and sizes of every stream (missing streams are left out). */
export async function streamStats(
  jsm: JetStreamManager,
): Promise<Array<{ stream: string; messages: number; lastSeq: number }>> {
  const out = await Promise.all(
    STREAM_NAMES.map(async (name) => {
      try {
        const info = await jsm.streams.info(name);
        return { stream: name, messages: info.state.messages, lastSeq: info.state.last_seq };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    }),
  );
  return out.filter((s) => s !== undefined);
}

/** Every durable consumer's backlog (ephemeral ones, such as the console's own readers, are left out). */
export async function consumerLags(jsm: JetStreamManager): Promise<ConsumerLag[]> {
  const out: ConsumerLag[] = [];
  for (const stream of STREAM_NAMES) {
    try {
      for (const c of await jsm.consumers.list(stream).next())
        if (c.config.durable_name)
          out.push({
            stream,
            consumer: c.name,
            pending: c.num_pending,
            ackPending: c.num_ack_pending,
            redelivered: c.num_redelivered,
          });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return out;
}

function summary(m: {
  seq: number;
  subject: string;
  data: Uint8Array;
  time: Date;
  headers: Parameters<typeof header>[0];
}): DeadLetterSummary {
  const reason = header(m.headers, Headers.rejectReason) ?? '';
  const originalSubject = header(m.headers, Headers.originalSubject) ?? '';
  const contentType = header(m.headers, Headers.contentType) ?? '';
  return {
    seq: m.seq,
    at: m.time.getTime(),
    subject: m.subject,
    originalSubject,
    reason,
    reasonKind: reasonKind(reason),
    rejectedBy: header(m.headers, Headers.rejectedBy) ?? '',
    tenant: tenantOf(m.data, contentType, originalSubject),
    size: m.data.byteLength,
    contentType,
  };
}

/**
 * Follows a stream with an ordered consumer (no durable state on the server) from `startSeq`, calling
 * `onMessage` for each message; stops with the returned function.
 */
async function follow(
  bus: Bus,
  stream: string,
  startSeq: number,
  onMessage: (m: JsMsg) => void,
  logger: Logger,
): Promise<() => Promise<void>> {
  const consumer = await bus.js.consumers.get(stream, {
    opt_start_seq: Math.max(1, startSeq),
    deliver_policy: DeliverPolicy.StartSequence,
  });
  const messages = await consumer.consume({ max_messages: 256 });
  const done = (async () => {
    for await (const m of messages) {
      try {
        onMessage(m);
      } catch (err) {
        logger.warn('could not read a message', { stream, seq: m.seq, err });
      }
    }
  })();
  return async () => {
    await messages.close();
    await done;
  };
}

/** Fills the dead-letter index from the DLQ stream (its last `capacity` messages, then live). */
export async function followDeadLetters(
  bus: Bus,
  index: DeadLetterIndex,
  capacity: number,
  logger: Logger,
): Promise<() => Promise<void>> {
  const info = await bus.jsm.streams.info(Streams.DLQ.name);
  const start = Math.max(info.state.first_seq, info.state.last_seq - capacity + 1);
  return follow(
    bus,
    Streams.DLQ.name,
    start,
    (m) => index.add(summary({ seq: m.seq, subject: m.subject, data: m.data, time: m.time, headers: m.headers })),
    logger,
  );
}

/** Churn alerts as they are published (starting with the last `recent`), for the overview's alert list. */
export async function followChurnAlerts(
  bus: Bus,
  recent: number,
  onAlert: (a: Alert) => void,
  logger: Logger,
): Promise<() => Promise<void>> {
  const info = await bus.jsm.streams.info(Streams.CHURN.name);
  return follow(
    bus,
    Streams.CHURN.name,
    Math.max(info.state.first_seq, info.state.last_seq - recent + 1),
    (m) => {
      if (m.subject !== Subjects.churnAlert) return;
      const a = churnV1.Alert.decode(m.data);
      onAlert({
        at: a.scoredAt?.getTime() ?? m.time.getTime(),
        kind: 'churn',
        severity: 'warning',
        message: `${a.userId} churn risk ${a.risk.toFixed(2)} crossed ${a.threshold.toFixed(2)}${
          a.topFactors[0] ? ` (top factor: ${a.topFactors[0].feature})` : ''
        }`,
        tenant: a.tenant || 'default',
      });
    },
    logger,
  );
}

export interface RawDeadLetter {
  detail: DeadLetterDetail;
  data: Uint8Array;
}

/** One dead letter with its original bytes. */
export async function readDeadLetter(jsm: JetStreamManager, seq: number): Promise<RawDeadLetter> {
  let m;
  try {
    m = await jsm.streams.getMessage(Streams.DLQ.name, { seq });
  } catch (err) {
    if (isNotFound(err)) throw new DeadLetterNotFoundError(`no dead letter ${seq}`, { cause: err });
    throw err;
  }
  if (!m) throw new DeadLetterNotFoundError(`no dead letter ${seq}`);
  const s = summary({ seq: m.seq, subject: m.subject, data: m.data, time: m.time, headers: m.header });
  const headers: Record<string, string> = {};
  for (const k of m.header?.keys() ?? []) headers[k] = m.header?.get(k) ?? '';
  return {
    detail: { ...s, hex: toHex(m.data), ...describePayload(m.data, s.contentType, s.originalSubject), headers },
    data: m.data,
  };
}

/**
 * Republishes dead letters to the subjects their producers used, so that ingest validates them again:
 * unchanged, or with a corrected JSON payload. Returns where each landed.
 */
export async function replayDeadLetters(
  bus: Bus,
  letters: Array<{ raw: RawDeadLetter; edited: string | undefined }>,
): Promise<ReplayResult> {
  const replayed: ReplayResult['replayed'] = [];
  for (const l of letters)
    if (!replayable(l.raw.detail.originalSubject))
      throw new NotReplayableError(
        `dead letter ${l.raw.detail.seq} came from ${l.raw.detail.originalSubject || 'an unknown subject'}`,
      );
  for (const { raw, edited } of letters) {
    const letter = raw.detail;
    const data = edited !== undefined ? new TextEncoder().encode(edited) : raw.data;
    const h = natsHeaders();
    h.set(Headers.contentType, edited !== undefined ? ContentTypes.json : letter.contentType || ContentTypes.json);
    const ack = await bus.js.publish(letter.originalSubject, data, { headers: h });
    replayed.push({
      seq: letter.seq,
      subject: letter.originalSubject,
      stream: ack.stream,
      streamSeq: ack.seq,
      edited: edited !== undefined,
    });
  }
  return { replayed };
}

/** The model registry as the console uses it: list, read the pointer, activate through the registry API. */
export function registryPort(registry: ModelRegistry): RegistryPort & {
  activate(bus: Bus, tenant: string, name: string, version: string): Promise<void>;
} {
  const kind = (name: string) => name as ModelName;
  return {
    names: (tenant) => registry.names(tenant),
    versions: (tenant, name) => registry.versions(tenant, kind(name)),
    activeVersion: async (tenant, name) => (await registry.activeMeta(tenant, kind(name)))?.version ?? null,
    activate: async (bus, tenant, name, version) => {
      await registry.activate(bus.publisher, tenant, kind(name), version);
    },
  };
}
