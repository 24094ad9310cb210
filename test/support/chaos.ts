/**
 * Chaos harness: the whole stack as separate processes on fixed ports, a steady producer that retries
 * what was not acknowledged (as a real one must), a prober that calls one RPC of every service on a
 * schedule with a deadline, and faults (SIGKILL + restart, SIGSTOP + SIGCONT) applied to each service
 * and to nats-server in turn. Used by the lean e2e test and by `pnpm bench chaos`.
 */
import {
  churnV1,
  clickstreamV1,
  ContentTypes,
  DEFAULT_TENANT,
  embeddingV1,
  featureV1,
  Headers,
  ingestV1,
  rankingV1,
  Subjects,
} from '@aisle/contracts';
import type { GeneratedEvent } from '@aisle/datagen';
import { createGrpcClient, isGrpcError, grpc } from '@aisle/runtime';
import {
  eventToProducerJson,
  eventToProducerProto,
  freePort,
  healthCheck,
  startNatsServer,
  startServiceProcess,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';

export const SERVICES = ['ingest', 'feature', 'embedding-inference', 'ranking', 'churn-prediction'] as const;
export type ServiceName = (typeof SERVICES)[number];
export type Target = ServiceName | 'nats-server';

export interface ChaosStack {
  readonly nats: NatsServerHandle;
  readonly storeUrl: string;
  address(name: ServiceName): string;
  process(name: ServiceName): ServiceProcess;
  /** SIGKILL, then start again on the same port; resolves when it is ready. */
  killAndRestart(name: ServiceName): Promise<void>;
  signal(target: Target, signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** nats-server plus every service, each on a port it keeps across restarts (its clients dial it). */
export async function startChaosStack(storeUrl: string, opts: { ackWait?: string } = {}): Promise<ChaosStack> {
  const nats = await startNatsServer();
  const ports = new Map<ServiceName, number>();
  for (const name of SERVICES) ports.set(name, await freePort());
  const address = (name: ServiceName) => `127.0.0.1:${ports.get(name) ?? 0}`;
  const env = (name: ServiceName): Record<string, string> => ({
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeUrl,
    AISLE_GRPC_PORT: String(ports.get(name)),
    // A killed consumer's unacknowledged messages come back this soon.
    AISLE_NATS_ACK_WAIT: opts.ackWait ?? '3s',
    AISLE_FEATURE_ADDR: address('feature'),
    AISLE_EMBEDDING_ADDR: address('embedding-inference'),
  });
  const processes = new Map<ServiceName, ServiceProcess>();
  const start = async (name: ServiceName) => {
    processes.set(name, await startServiceProcess(name, env(name), { timeoutMs: 60_000 }));
  };
  await Promise.all([start('ingest'), start('feature'), start('embedding-inference')]);
  await Promise.all([start('ranking'), start('churn-prediction')]);
  const proc = (name: ServiceName) => {
    const p = processes.get(name);
    if (!p) throw new Error(`${name} is not running`);
    return p;
  };
  return {
    nats,
    storeUrl,
    address,
    process: proc,
    async killAndRestart(name) {
      const p = proc(name);
      p.kill('SIGKILL');
      await p.exited;
      await start(name);
    },
    signal(target, signal) {
      if (target === 'nats-server') nats.signal(signal);
      else proc(target).kill(signal);
    },
    async stop() {
      for (const p of processes.values()) p.kill('SIGCONT');
      nats.signal('SIGCONT');
      await Promise.all([...processes.values()].map((p) => p.stop()));
      await nats.dispose();
    },
  };
}

/**
 * A producer at a steady rate: each event is published (JetStream, Nats-Msg-Id `<tenant>:<event_id>`)
 * or, one in `trackEvery`, sent with gRPC Track, and retried with the same id until acknowledged. An
 * event is in `acked` once JetStream or Track said it is durable.
 */
export class SteadyProducer {
  readonly acked = new Set<string>();
  attempts = 0;
  failures = 0;
  longestStallMs = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private readonly track;

  constructor(
    private readonly natsUrl: string,
    ingestAddress: string,
    private readonly events: readonly GeneratedEvent[],
    private readonly opts: { perSecond: number; trackEvery: number },
  ) {
    this.track = createGrpcClient(ingestV1.IngestServiceService, ingestAddress, { deadlineMs: 2000 });
  }

  async start(): Promise<void> {
    this.nc = await connect({ servers: this.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    this.js = jetstream(this.nc, { timeout: 2000 });
    this.running = this.loop();
  }

  /** Stops after the event in flight is acknowledged. Returns how many were sent. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.running;
    this.track.close();
    await this.nc?.close();
    return this.acked.size;
  }

  private async send(e: GeneratedEvent, viaTrack: boolean): Promise<void> {
    if (viaTrack) {
      const event = clickstreamV1.Event.decode(eventToProducerProto(e));
      const r = await this.track.track({ events: [event] });
      if (r.accepted !== 1) throw new Error(`Track rejected ${e.eventId}: ${JSON.stringify(r.rejected)}`);
      return;
    }
    const h = headers();
    h.set(Headers.contentType, ContentTypes.json);
    await this.js?.publish(Subjects.clickstream(e.type), JSON.stringify(eventToProducerJson(e)), {
      headers: h,
      msgID: `${DEFAULT_TENANT}:${e.eventId}`,
    });
  }

  private async loop(): Promise<void> {
    const gapMs = 1000 / this.opts.perSecond;
    let next = Date.now();
    for (const [i, e] of this.events.entries()) {
      if (this.stopped) return;
      next += gapMs;
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const since = Date.now();
      for (;;) {
        this.attempts++;
        try {
          await this.send(e, i % this.opts.trackEvery === 0);
          this.acked.add(e.eventId);
          break;
        } catch {
          this.failures++;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      this.longestStallMs = Math.max(this.longestStallMs, Date.now() - since);
      // After a stall, carry on at the rate rather than bursting to catch up.
      next = Math.max(next, Date.now() - gapMs);
    }
  }
}

export interface Stall {
  from: number;
  to: number;
}

export interface Outcome {
  service: ServiceName;
  at: number;
  ms: number;
  code: string;
}

const codeName = (err: unknown): string =>
  isGrpcError(err) ? (grpc.status[err.code] ?? String(err.code)) : `not gRPC: ${String(err)}`;

/**
 * Calls one RPC of every service every `everyMs`, each with `deadlineMs`, and records the outcomes.
 * Also records when its own process stalled (a timer more than 250 ms late): a call that spans such a
 * stall says nothing about the service, whose answer may have waited in this process.
 */
export class RpcProber {
  readonly outcomes: Outcome[] = [];
  readonly stalls: Stall[] = [];
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly calls: Record<ServiceName, () => Promise<unknown>>;
  private readonly closers: Array<() => void> = [];

  constructor(
    stack: Pick<ChaosStack, 'address'>,
    private readonly opts: { everyMs: number; deadlineMs: number; userId: string },
  ) {
    const client = <D extends Parameters<typeof createGrpcClient>[0]>(d: D, name: ServiceName) => {
      // A new connection attempt soon after a restart, not after grpc-js's default backoff (up to 2 min).
      const c = createGrpcClient(d, stack.address(name), {
        deadlineMs: opts.deadlineMs,
        channelOptions: { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 },
      });
      this.closers.push(() => c.close());
      return c;
    };
    const ingest = client(ingestV1.IngestServiceService, 'ingest');
    const feature = client(featureV1.FeatureServiceService, 'feature');
    const embedding = client(embeddingV1.EmbeddingServiceService, 'embedding-inference');
    const ranking = client(rankingV1.RankingServiceService, 'ranking');
    const churn = client(churnV1.ChurnServiceService, 'churn-prediction');
    const user = opts.userId;
    this.calls = {
      ingest: () => ingest.track({ events: [] }),
      feature: () => feature.getUserFeatures({ tenant: '', userIds: [user], recentLimit: 5 }),
      'embedding-inference': () => embedding.retrieve({ tenant: '', text: 'gift', k: 5, excludeItemIds: [], index: 0 }),
      ranking: () => ranking.recommend(rankingV1.RecommendRequest.fromPartial({ userId: user, limit: 5 })),
      'churn-prediction': () => churn.predict({ tenant: '', userIds: [user] }),
    };
  }

  start(): void {
    let last = Date.now();
    this.watchdog = setInterval(() => {
      const now = Date.now();
      if (now - last > 250) this.stalls.push({ from: last, to: now });
      last = now;
    }, 50);
    this.timer = setInterval(() => {
      for (const service of SERVICES) {
        const at = Date.now();
        const p: Promise<void> = this.calls[service]()
          .then(
            () => 'OK',
            (err: unknown) => codeName(err),
          )
          .then((code) => {
            this.outcomes.push({ service, at, ms: Date.now() - at, code });
            this.inFlight.delete(p);
          });
        this.inFlight.add(p);
      }
    }, this.opts.everyMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
    clearInterval(this.watchdog);
    for (const close of this.closers) close();
  }
}

export interface Fault {
  target: Target;
  kind: 'kill' | 'stop';
  /** When the target stopped answering, and when it was back (ready again, or continued). */
  from: number;
  to: number;
}

/** Applies one fault and returns its window. `stop` holds the target frozen for `holdMs`. */
export async function applyFault(
  stack: ChaosStack,
  target: Target,
  kind: Fault['kind'],
  holdMs: number,
): Promise<Fault> {
  const from = Date.now();
  if (kind === 'stop') {
    stack.signal(target, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, holdMs));
    stack.signal(target, 'SIGCONT');
  } else if (target === 'nats-server') {
    stack.signal(target, 'SIGKILL');
    await new Promise((r) => setTimeout(r, holdMs));
    await stack.nats.restart();
  } else {
    await stack.killAndRestart(target);
  }
  return { target, kind, from, to: Date.now() };
}

/** What a service may answer besides OK: UNAVAILABLE always; embedding without a model, FAILED_PRECONDITION. */
const ALLOWED: Record<ServiceName, readonly string[]> = {
  ingest: ['OK', 'UNAVAILABLE'],
  feature: ['OK', 'UNAVAILABLE'],
  'embedding-inference': ['OK', 'UNAVAILABLE', 'FAILED_PRECONDITION'],
  ranking: ['OK', 'UNAVAILABLE'],
  'churn-prediction': ['OK', 'UNAVAILABLE'],
};

export interface Judging {
  deadlineMs: number;
  /** Lateness tolerated on top of the deadline (the client measures it, on a busy machine). */
  marginMs: number;
  /** After a fault, how long clients may take to reconnect to the restarted process. */
  graceMs: number;
  /** When the calling process itself stalled. */
  stalls: readonly Stall[];
}

/**
 * A call that cannot be judged: to a service while that very process was down or frozen (plus the
 * grace for clients to reconnect), since nothing can answer for a stopped process; or one that spanned
 * a stall of the calling process.
 */
export function excused(o: Outcome, faults: readonly Fault[], j: Judging): boolean {
  const during = (from: number, to: number) => o.at <= to && o.at + o.ms >= from;
  return (
    faults.some((f) => f.target === o.service && during(f.from - j.graceMs, f.to + j.graceMs)) ||
    j.stalls.some((s) => during(s.from, s.to))
  );
}

/** Outcomes that break "every RPC is answered within its deadline, or with UNAVAILABLE". */
export function violations(outcomes: readonly Outcome[], faults: readonly Fault[], j: Judging): Outcome[] {
  return outcomes.filter(
    (o) => !excused(o, faults, j) && (!ALLOWED[o.service].includes(o.code) || o.ms > j.deadlineMs + j.marginMs),
  );
}

/** Waits until every service's health says SERVING for the process (""). */
export async function allServing(stack: ChaosStack, timeoutMs: number): Promise<Record<ServiceName, string>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const states = Object.fromEntries(
      await Promise.all(
        SERVICES.map(async (s) => [s, await healthCheck(stack.address(s), '', 1000).catch(() => 'UNREACHABLE')]),
      ),
    ) as Record<ServiceName, string>;
    if (Object.values(states).every((v) => v === 'SERVING') || Date.now() > until) return states;
    await new Promise((r) => setTimeout(r, 250));
  }
}
