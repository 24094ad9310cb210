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
  payload: Uint8Array;
}

/** Where impressions go: JetStream in production (`jetStreamImpressions`), a fake in tests. */
export interface ImpressionTransport {
  /** Resolves once stored (acknowledged); rejects when not. */
  publish(payload: Uint8Array, msgId: string): Promise<unknown>;
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
}

/**
 * Impressions on `aisle.ranking.v1.served`, never on a request's path: `served` only queues (bounded,
 * oldest dropped first and counted in `aisle_ranking_impressions_dropped_total`); a pump publishes with
 * at most `maxInFlight` acks pending, pauses while NATS is disconnected and retries what was not
 * acknowledged, so impressions made during an outage arrive when NATS returns. Retries carry the same
 * `Nats-Msg-Id` (the request id): the stream stores each impression once.
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
  private backoffMs = 0;
  private readonly dropped: Counter;
  private readonly published: Counter;

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
    this.queue.push({ seq: this.seq++, requestId: e.requestId, payload: encodeServed(e) });
    this.pump();
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
      this.transport.publish(p.payload, p.requestId).then(
        () => {
          this.inFlight--;
          this.published.inc();
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

  /** Waits up to `timeoutMs` for what is buffered to be published, then stops. */
  async close(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.size > 0 && this.connected && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.size > 0) this.logger.warn('impressions not published at shutdown', { count: this.size });
    this.transport.close();
  }
}
