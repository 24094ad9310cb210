import { clickstreamV1, ContentTypes, Headers, privacyV1, splitSubject, Streams, Subjects } from '@aisle/contracts';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { JetStreamApiError, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { ConfigError, SECRET_PLACEHOLDER, type ForgetConfig } from './config';
import type { Logger } from './logger';
import { counterIn } from './metrics';
import { ACK, header, startConsumerLoop, type NamedUser, type Outcome } from './nats';
import { scheduleRetention, type Bus, type ServiceBase } from './service';

/** Where a user's messages lie in a stream (from the store's message index). */
export interface StreamPosition {
  stream: string;
  seq: number;
}

/**
 * Erases messages from their streams, overwriting their bytes on disk (JetStream's secure delete), so
 * that neither the store directory nor a later consumer sees them. Already gone (aged out, erased by an
 * earlier attempt) counts as done. Returns how many were erased now.
 */
export async function eraseMessages(jsm: JetStreamManager, positions: readonly StreamPosition[]): Promise<number> {
  let erased = 0;
  for (const p of positions) {
    try {
      if (await jsm.streams.deleteMessage(p.stream, p.seq, true)) erased++;
    } catch (err) {
      // 10037: no message found (aged out or erased before).
      if (!(err instanceof JetStreamApiError && err.code === 10037)) throw err;
    }
  }
  return erased;
}

/**
 * The user a normalized event (protobuf `Event`, the EVENTS stream) names: consumers of EVENTS index
 * their dead letters by it. Undefined for what is not an event of a user (a catalog item, garbage).
 */
export function eventUserOf(m: JsMsg): NamedUser | undefined {
  if (m.subject === Subjects.eventsItem) return undefined;
  try {
    const e = clickstreamV1.Event.decode(m.data);
    return e.userId ? { tenant: e.tenant, userId: e.userId } : undefined;
  } catch {
    return undefined;
  }
}

/** The store's message index, as erasure uses it (structurally: the runtime does not import the store). */
export interface MessageIndex {
  record(positions: ReadonlyArray<StreamPosition & { tenant: string; userId: string }>): Promise<void>;
  take(tenant: string, userId: string, streams: readonly string[]): Promise<StreamPosition[]>;
}

/**
 * Erases one user's indexed messages from `streams`. Should erasure fail half way, the positions go
 * back into the index, so the redelivered request finds them again.
 */
export async function eraseIndexedMessages(
  jsm: JetStreamManager,
  index: MessageIndex,
  tenant: string,
  userId: string,
  streams: readonly string[],
): Promise<number> {
  const positions = await index.take(tenant, userId, streams);
  try {
    return await eraseMessages(jsm, positions);
  } catch (err) {
    await index.record(positions.map((p) => ({ ...p, tenant, userId })));
    throw err;
  }
}

/** A forget request (protobuf or JSON by content type), or the reason it is not one. */
export function decodeForget(data: Uint8Array, contentType: string | undefined): privacyV1.ForgetUser | string {
  try {
    return contentType === ContentTypes.json
      ? privacyV1.ForgetUser.fromJSON(JSON.parse(new TextDecoder().decode(data)))
      : privacyV1.ForgetUser.decode(data);
  } catch (err) {
    return `payload: not a valid ForgetUser (${err instanceof Error ? err.message : String(err)})`;
  }
}

/**
 * Follows `aisle.privacy.v1.forget.<tenant>` for one owner of user data: erases the user (`forget`, idempotent:
 * a repeated request finds nothing and erases nothing), then announces `aisle.privacy.v1.forgotten` with
 * the request id and a count, never the user id. Requests for undeclared tenants or without a user are
 * set aside on the in-memory PRIVACY stream, not the DLQ (which is on disk). Nothing here logs the user.
 */
export async function followForgetRequests(
  base: ServiceBase,
  bus: Bus,
  opts: {
    owner: string;
    ackWaitMs: number;
    forget: (tenant: string, userId: string) => Promise<number>;
  },
): Promise<void> {
  const done = counterIn(base.registry, 'aisle_forget_requests_total', 'Forget requests handled, by result', [
    'result',
  ]);
  const loop = await startConsumerLoop({
    js: bus.js,
    jsm: bus.jsm,
    stream: Streams.PRIVACY.name,
    durable: `${opts.owner}-privacy`,
    filterSubject: Subjects.privacyForgetAll,
    batchSize: 16,
    maxInFlight: 64,
    ackWaitMs: opts.ackWaitMs,
    logger: base.logger,
    registry: base.registry,
    deadLetter: { publisher: bus.publisher, subject: Subjects.privacyRejected, by: opts.owner },
    handleBatch: async (msgs) => {
      const outcomes: Outcome[] = [];
      for (const m of msgs) {
        const req = decodeForget(m.data, header(m.headers, Headers.contentType));
        if (typeof req === 'string') {
          outcomes.push({ kind: 'term', reason: req });
          done.inc({ result: 'invalid' });
          continue;
        }
        // The subject binds the tenant (a producer's NATS user may publish only its own tenant's).
        const tenant = splitSubject(m.subject, 'aisle.privacy.v1')?.tenant ?? '';
        const problem = !base.tenants.has(tenant)
          ? `tenant: '${tenant.slice(0, 64)}' is not a declared tenant`
          : req.tenant && req.tenant !== tenant
            ? `tenant: '${req.tenant.slice(0, 64)}' does not match the subject's tenant '${tenant}'`
            : !req.userId
              ? 'user_id: required'
              : undefined;
        if (problem) {
          outcomes.push({ kind: 'term', reason: problem });
          done.inc({ result: 'invalid' });
          continue;
        }
        // A producer may leave the request id out: the stream position names the request then.
        const requestId = req.requestId || `seq-${m.seq}`;
        const records = await opts.forget(tenant, req.userId);
        await bus.publisher.publish(
          Subjects.privacyForgotten,
          privacyV1.UserForgotten.encode({
            tenant,
            requestId,
            owner: opts.owner,
            records,
            forgottenAt: new Date(),
          }).finish(),
          {
            msgId: `forgotten:${opts.owner}:${tenant}:${requestId}`,
            headers: { [Headers.contentType]: ContentTypes.protobuf },
            noTrace: true,
          },
        );
        base.logger.info('user forgotten', { tenant, request_id: requestId, records });
        done.inc({ result: 'forgotten' });
        outcomes.push(ACK);
      }
      return outcomes;
    },
  });
  base.lifecycle.onShutdown(`${opts.owner} forget requests`, () => loop.stop());
}

/** The store's forget markers, as `ForgottenUsers` uses them (structurally: the runtime does not import the store). */
export interface ForgetMarkers {
  mark(tenant: string, userKey: string, forgottenAtMs: number): Promise<void>;
  getMany(tenant: string, userKeys: readonly string[]): Promise<Map<string, number>>;
  list(tenant: string): Promise<Map<string, number>>;
}

/** Used without AISLE_FORGET_KEY_FILE (local development only): markers are then plain hashes in effect. */
const DEVELOPMENT_FORGET_KEY = 'aisle-development-forget-key';

/** Fewest characters a forget key may have: `openssl rand -base64 32` writes 44. */
export const FORGET_KEY_MIN_CHARS = 32;

/**
 * The forget key from the file's text (surrounding whitespace dropped): refused, with the variable named,
 * when it is shorter than `FORGET_KEY_MIN_CHARS` or still a template's placeholder.
 */
export function parseForgetKey(text: string): string {
  const key = text.trim();
  if (SECRET_PLACEHOLDER.test(key))
    throw new ConfigError(['AISLE_FORGET_KEY_FILE holds a placeholder: write a real key (openssl rand -base64 32)']);
  if (key.length < FORGET_KEY_MIN_CHARS)
    throw new ConfigError([
      `AISLE_FORGET_KEY_FILE holds ${key.length} characters, fewer than ${FORGET_KEY_MIN_CHARS}: write a real key (openssl rand -base64 32)`,
    ]);
  return key;
}

/**
 * Which users were forgotten, and when: a marker per (tenant, user) named by a keyed hash of the user id,
 * so that the store keeps no personal data beyond what blocks the user's late events. An event of a
 * forgotten user that occurred before the request (in flight when it came, or replayed) is dropped; an
 * event after it (the shopper came back) is kept.
 */
export class ForgottenUsers {
  constructor(
    private readonly key: string | Buffer,
    private readonly markers: ForgetMarkers,
  ) {}

  /**
   * Reads the key from AISLE_FORGET_KEY_FILE. Without one: refused in production (fail closed: the
   * configuration check stops the start before this), the built-in key with a warning in development.
   */
  static open(
    config: Pick<ForgetConfig, 'forgetKeyFile'> & { deployment?: string },
    markers: ForgetMarkers,
    logger: Logger,
  ): ForgottenUsers {
    if (config.forgetKeyFile)
      return new ForgottenUsers(parseForgetKey(readFileSync(config.forgetKeyFile, 'utf8')), markers);
    if (config.deployment === 'production')
      throw new ConfigError([
        'AISLE_FORGET_KEY_FILE is required when AISLE_ENV=production (forget markers under the built-in key are guessable hashes of user ids)',
      ]);
    logger.warn('AISLE_FORGET_KEY_FILE is not set: forget markers use the built-in key (development only)');
    return new ForgottenUsers(DEVELOPMENT_FORGET_KEY, markers);
  }

  /** The keyed hash that names the user in a marker. */
  keyOf(tenant: string, userId: string): string {
    return createHmac('sha256', this.key).update(tenant).update('\u001f').update(userId).digest('base64url');
  }

  mark(tenant: string, userId: string, at = Date.now()): Promise<void> {
    return this.markers.mark(tenant, this.keyOf(tenant, userId), at);
  }

  /**
   * The indices of `events` to drop: events of forgotten users that occurred no later than their
   * marker. One store read per tenant in the batch.
   */
  async dropped(
    events: ReadonlyArray<{ tenant: string; userId: string; occurredAt: number } | undefined>,
  ): Promise<Set<number>> {
    const byTenant = new Map<string, Map<number, string>>();
    events.forEach((e, i) => {
      if (!e?.userId) return;
      let keys = byTenant.get(e.tenant);
      if (!keys) byTenant.set(e.tenant, (keys = new Map<number, string>()));
      keys.set(i, this.keyOf(e.tenant, e.userId));
    });
    const out = new Set<number>();
    for (const [tenant, keys] of byTenant) {
      const marked = await this.markers.getMany(tenant, [...new Set(keys.values())]);
      if (marked.size === 0) continue;
      for (const [i, key] of keys) {
        const at = marked.get(key);
        if (at !== undefined && (events[i]?.occurredAt ?? Infinity) <= at) out.add(i);
      }
    }
    return out;
  }

  /** A tenant's markers as a test of (user, occurredAt): for a long scan (training), read once. */
  async forgottenIn(tenant: string): Promise<(userId: string, occurredAt: number) => boolean> {
    const marked = await this.markers.list(tenant);
    if (marked.size === 0) return () => false;
    return (userId, occurredAt) => {
      const at = marked.get(this.keyOf(tenant, userId));
      return at !== undefined && occurredAt <= at;
    };
  }
}

/** The store's message index, as its retention uses it. */
export interface PrunableMessageIndex {
  pruneBefore(stream: string, recordedBeforeMs: number, limit: number): Promise<{ deleted: number; more: boolean }>;
}

/** Most index entries one pruning pass deletes per stream (a pass that stops there is followed by another). */
export const MESSAGE_INDEX_PRUNE_LIMIT = 20_000;

/**
 * Keeps the message index no longer than the streams keep its messages: hourly (and at start), the
 * positions of each stream recorded longer ago than the stream's max age are deleted (their messages
 * have aged out), at most `MESSAGE_INDEX_PRUNE_LIMIT` per pass.
 */
export function pruneMessageIndex(
  base: ServiceBase,
  index: PrunableMessageIndex,
  streams: ReadonlyArray<{ name: string; maxAgeMs: number }>,
  opts: { everyMs?: number; limit?: number } = {},
): void {
  for (const stream of streams)
    scheduleRetention(base, {
      what: `message index ${stream.name}`,
      retentionMs: stream.maxAgeMs,
      ...(opts.everyMs !== undefined && { everyMs: opts.everyMs }),
      prune: (cutoff) => index.pruneBefore(stream.name, cutoff, opts.limit ?? MESSAGE_INDEX_PRUNE_LIMIT),
    });
}
