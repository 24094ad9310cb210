import { ContentTypes, Headers, rankingV1, Subjects } from '@aisle/contracts';
import type { ImpressionSink, ServedEvent, Surface } from '@aisle/ranking-core';
import {
  AsyncJetStreamPublisher,
  counter,
  gauge,
  type Counter,
  type Gauge,
  type Logger,
  type NatsConnection,
  type Registry,
} from '@aisle/runtime';

const SURFACES: Record<Surface, rankingV1.Surface> = {
  recommend: rankingV1.Surface.SURFACE_RECOMMEND,
  search: rankingV1.Surface.SURFACE_SEARCH,
  rank: rankingV1.Surface.SURFACE_RANK,
  similar_items: rankingV1.Surface.SURFACE_SIMILAR_ITEMS,
};

export function encodeServed(e: ServedEvent): Uint8Array {
  return rankingV1.Served.encode({ ...e, surface: SURFACES[e.surface], servedAt: new Date(e.servedAt) }).finish();
}

interface Pending {
  seq: number;
  requestId: string;
  tenant: string;
  userId: string;
  event: ServedEvent;
  /** Encoded when first published (off the request's path), kept for retries. */
  payload?: Uint8Array;
}

/** Where a user's impression lies in its stream (the store's message index records it). */
export interface ImpressionPosition {
  tenant: string;
  userId: string;
  stream: string;
  seq: number;
}

/** Where impressions go: JetStream in production (`jetStreamImpressions`), a fake in tests. */
export interface ImpressionTransport {
  /** Resolves once stored (acknowledged), with where; rejects when not. */
  publish(payload: Uint8Array, msgId: string): Promise<{ stream: string; seq: number } | void>;
  /** Connection changes: publishing pauses on `disconnect` and resumes on `reconnect`. */
  status(): AsyncIterable<{ type: string }>;
  close(): void;
}

/** Impressions on `aisle.ranking.v1.served` over JetStream, with their own ack timeout. */
export function jetStreamImpressions(nc: NatsConnection, ackTimeoutMs: number): ImpressionTransport {
  const publisher = new AsyncJetStreamPublisher(nc, ackTimeoutMs);
  return {
    publish: (payload, msgId) =>
      publisher.publish(Subjects.rankingServed, payload, {
        msgId,
        headers: { [Headers.contentType]: ContentTypes.protobuf },
        noTrace: true,
      }),
    status: () => nc.status(),
    close: () => publisher.close(),
  };
}

export interface ImpressionBufferOptions {
  /** Most impressions held while NATS is away; the oldest are dropped beyond (and counted). */
  maxBuffered: number;
  /** Most publishes awaiting their JetStream ack at once. */
  maxInFlight: number;
  /**
   * Records where a known user's impressions were stored (in batches), so that forgetting the user erases
   * them from the RANKING stream without scanning it.
   */
  index?: (positions: ImpressionPosition[]) => Promise<void>;
}

/**
 * Impressions on `aisle.ranking.v1.served`, never on a request's path: `served` only queues (bounded,
 * oldest dropped first and counted in `aisle_ranking_impressions_dropped_total`); a pump publishes with
 * at most `maxInFlight` acks pending, pauses while NATS is disconnected and retries what was not
 * acknowledged, so impressions made during an outage arrive when NATS returns. Retries carry the same
 * `Nats-Msg-Id` (the request id): the stream stores each impression once. Encoding and publishing run
 * after the current I/O callbacks (`setImmediate`), so a response is written before its impression is
 * encoded, and the impressions of requests answered together leave in one socket write.
 */
export class ImpressionBuffer implements ImpressionSink {
  /** Waiting to be published, oldest first (by `seq`); the ones in flight are counted apart. */
  private queue: Pending[] = [];
  private head = 0;
  private seq = 0;
  private inFlight = 0;
  private connected = true;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumpScheduled: NodeJS.Immediate | undefined;
  private backoffMs = 0;
  private readonly dropped: Counter;
  private readonly published: Counter;
  private readonly unindexed: Counter;
  /** Positions of stored impressions waiting to be recorded in the message index. */
  private positions: ImpressionPosition[] = [];
  private indexTimer: NodeJS.Timeout | undefined;
  private indexing: Promise<void> = Promise.resolve();

  constructor(
    private readonly transport: ImpressionTransport,
    private readonly opts: ImpressionBufferOptions,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.dropped = counter(registry, {
      name: 'aisle_ranking_impressions_dropped_total',
      help: 'Impressions dropped because the buffer was full while NATS was away',
    });
    this.published = counter(registry, {
      name: 'aisle_ranking_impressions_published_total',
      help: 'Impressions acknowledged by JetStream',
    });
    this.unindexed = counter(registry, {
      name: 'aisle_ranking_impressions_unindexed_total',
      help: 'Stored impressions whose position the message index could not record (forgetting their user misses them until they age out)',
    });
    const buffered: Gauge = gauge(registry, {
      name: 'aisle_ranking_impressions_buffered',
      help: 'Impressions waiting to be published',
      collect: () => {
        buffered.set(this.size);
      },
    });
    void this.watch();
  }

  /** Impressions not yet acknowledged (waiting or in flight). */
  get size(): number {
    return this.queue.length - this.head + this.inFlight;
  }

  served(e: ServedEvent): void {
    if (this.closed) return;
    if (this.size >= this.opts.maxBuffered) {
      this.dropped.inc();
      // The oldest waiting one goes; with every one in flight, this one.
      if (this.head < this.queue.length) this.head++;
      else return;
    }
    this.queue.push({
      seq: this.seq++,
      requestId: e.requestId,
      tenant: e.tenant,
      userId: e.userId,
      event: e,
    });
    this.pumpScheduled ??= setImmediate(() => {
      this.pumpScheduled = undefined;
      this.pump();
    });
  }

  private async watch(): Promise<void> {
    for await (const s of this.transport.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect') this.connected = false;
      else if (s.type === 'reconnect') {
        this.connected = true;
        this.backoffMs = 0;
        this.pump();
      }
    }
  }

  private pump(): void {
    if (!this.connected || this.closed || this.retryTimer) return;
    while (this.inFlight < this.opts.maxInFlight && this.head < this.queue.length) {
      const p = this.queue[this.head++] as Pending;
      this.inFlight++;
      p.payload ??= encodeServed(p.event);
      this.transport.publish(p.payload, p.requestId).then(
        (ack) => {
          this.inFlight--;
          this.published.inc();
          if (ack && p.userId && this.opts.index) this.indexLater({ tenant: p.tenant, userId: p.userId, ...ack });
          this.backoffMs = 0;
          this.pump();
        },
        (err: unknown) => {
          this.inFlight--;
          this.retry(p, err);
          this.pump();
        },
      );
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Puts a failed impression back in order and pauses publishing for a growing while. */
  private retry(p: Pending, err: unknown): void {
    if (this.closed) return;
    let i = this.queue.length;
    while (i > this.head && (this.queue[i - 1] as Pending).seq > p.seq) i--;
    if (i === this.head && this.head > 0) this.queue[--this.head] = p;
    else this.queue.splice(i, 0, p);
    if (this.backoffMs === 0) this.logger.warn('impressions not acknowledged; buffering and retrying', { err });
    this.backoffMs = Math.min(2000, Math.max(100, this.backoffMs * 2));
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.backoffMs);
  }

  /**
   * Records positions in batches, every 2 s or at once when 5,000 are waiting: a store write can wait for
   * another writer (SQLite blocks the event loop while it does), and frequent small writes starved the
   * impression publisher under load (acks timed out, impressions were dropped). A forget request flushes
   * first (`indexed`), so batching loses nothing.
   */
  private indexLater(position: ImpressionPosition): void {
    this.positions.push(position);
    if (this.positions.length >= 5000) this.flushIndex();
    else this.indexTimer ??= setTimeout(() => this.flushIndex(), 2000);
  }

  private flushIndex(): void {
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.indexTimer = undefined;
    const batch = this.positions;
    this.positions = [];
    if (batch.length === 0 || !this.opts.index) return;
    const index = this.opts.index;
    // One write at a time, in order.
    this.indexing = this.indexing.then(() =>
      index(batch).catch((err: unknown) => {
        this.unindexed.inc(batch.length);
        this.logger.warn('impression positions not recorded in the message index', { count: batch.length, err });
      }),
    );
  }

  /**
   * Records the positions of every impression stored so far now, and resolves when done: a forget request
   * calls it first, so that an impression stored a moment before is found and erased too.
   */
  async indexed(): Promise<void> {
    this.flushIndex();
    await this.indexing;
  }

  /** Waits up to `timeoutMs` for what is buffered to be published (and indexed), then stops. */
  async close(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.size > 0 && this.connected && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.flushIndex();
    await this.indexing;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pumpScheduled) clearImmediate(this.pumpScheduled);
    if (this.size > 0) this.logger.warn('impressions not published at shutdown', { count: this.size });
    this.transport.close();
  }
}
