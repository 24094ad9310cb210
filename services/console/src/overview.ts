import type {
  Alert,
  ConsumerLag,
  LoadedModel,
  OverviewPoint,
  OverviewSnapshot,
  ServiceHealth,
  StreamRate,
} from './api';

/** What the overview samples; adapters implement it over JetStream, gRPC health and /status. */
export interface OverviewSources {
  streams(): Promise<Array<{ stream: string; messages: number; lastSeq: number }>>;
  consumers(): Promise<ConsumerLag[]>;
  services(): Promise<ServiceHealth[]>;
  /** Churn alerts published since the last call (the adapter follows the stream). */
  newAlerts(): Alert[];
}

export const STREAMS_IN = ['CLICKSTREAM', 'CATALOG'];
export const STREAM_OUT = 'EVENTS';
export const STREAM_DLQ = 'DLQ';

/**
 * Samples the platform on a timer, once for every viewer: stream rates from sequence deltas, consumer
 * lag, service health and loaded model versions; derives alerts from changes (a service leaving
 * SERVING, new dead letters, a model version switching) and keeps the last few minutes for the charts.
 */
export class OverviewSampler {
  private previous: { at: number; lastSeq: Map<string, number> } | undefined;
  private current: OverviewSnapshot | undefined;
  private readonly history: OverviewPoint[] = [];
  private readonly alerts: Alert[] = [];
  private readonly listeners = new Set<(s: OverviewSnapshot) => void>();
  private lastServices = new Map<string, ServiceHealth>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly sources: OverviewSources,
    private readonly opts: { intervalMs: number; historyPoints?: number; maxAlerts?: number; clock?: () => number },
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.sample()
        .then(() => undefined)
        .catch(() => undefined)
        .finally(() => {
          this.running = undefined;
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Calls `listener` with every new snapshot; returns the unsubscribe function. */
  subscribe(listener: (s: OverviewSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  latest(): OverviewSnapshot | undefined {
    return this.current;
  }

  /** One sample; public so tests can drive it without the timer. */
  async sample(): Promise<OverviewSnapshot> {
    const now = (this.opts.clock ?? Date.now)();
    const [streams, consumers, services] = await Promise.all([
      this.sources.streams(),
      this.sources.consumers().catch(() => [] as ConsumerLag[]),
      this.sources.services(),
    ]);
    const lastSeq = new Map(streams.map((s) => [s.stream, s.lastSeq]));
    const prev = this.previous;
    const seconds = prev ? Math.max(0.001, (now - prev.at) / 1000) : 0;
    const rate = (name: string) => {
      if (!prev) return 0;
      const before = prev.lastSeq.get(name);
      const after = lastSeq.get(name);
      return before === undefined || after === undefined ? 0 : Math.max(0, after - before) / seconds;
    };
    const rates: StreamRate[] = streams.map((s) => ({ ...s, perSecond: rate(s.stream) }));
    const eventsIn = STREAMS_IN.reduce((a, s) => a + rate(s), 0);
    const eventsOut = rate(STREAM_OUT);
    const dead = rate(STREAM_DLQ);
    if (prev) {
      const newDead = (lastSeq.get(STREAM_DLQ) ?? 0) - (prev.lastSeq.get(STREAM_DLQ) ?? 0);
      if (newDead > 0)
        this.alert(now, 'dead_letters', 'warning', `${newDead} new dead letter${newDead === 1 ? '' : 's'}`, null);
    }
    this.noteServiceChanges(now, services);
    for (const a of this.sources.newAlerts()) this.pushAlert(a);
    this.previous = { at: now, lastSeq };
    if (prev) {
      this.history.push({ at: now, eventsIn, eventsOut, deadLetters: dead });
      const max = this.opts.historyPoints ?? 300;
      if (this.history.length > max) this.history.splice(0, this.history.length - max);
    }
    const snapshot: OverviewSnapshot = {
      at: now,
      eventsInPerSecond: eventsIn,
      eventsOutPerSecond: eventsOut,
      deadLettersPerSecond: dead,
      streams: rates,
      consumers: [...consumers].sort((a, b) => b.pending + b.ackPending - (a.pending + a.ackPending)),
      services,
      alerts: [...this.alerts].reverse(),
      history: [...this.history],
    };
    this.current = snapshot;
    for (const l of this.listeners) l(snapshot);
    return snapshot;
  }

  private noteServiceChanges(now: number, services: ServiceHealth[]): void {
    for (const s of services) {
      const before = this.lastServices.get(s.service);
      if (before && before.status !== s.status)
        this.alert(
          now,
          'health',
          s.status === 'SERVING' ? 'info' : 'critical',
          `${s.service} is ${s.status}${s.detail ? ` (${s.detail})` : ''}, was ${before.status}`,
          null,
        );
      for (const m of s.models) {
        const was = before?.models.find((b) => b.tenant === m.tenant && b.model === m.model)?.version;
        if (was !== undefined && was !== m.version)
          this.alert(
            now,
            'model',
            'info',
            `${s.service} switched ${m.model}${m.tenant === null ? '' : ` of ${m.tenant}`} from ${was} to ${m.version}`,
            m.tenant,
          );
      }
    }
    this.lastServices = new Map(services.map((s) => [s.service, s]));
  }

  private alert(at: number, kind: Alert['kind'], severity: Alert['severity'], message: string, tenant: string | null) {
    this.pushAlert({ at, kind, severity, message, tenant });
  }

  private pushAlert(a: Alert): void {
    this.alerts.push(a);
    const max = this.opts.maxAlerts ?? 200;
    if (this.alerts.length > max) this.alerts.splice(0, this.alerts.length - max);
  }
}

const ofTenant = (tenant: string) => (x: { tenant: string | null }) => x.tenant === null || x.tenant === tenant;

/** The versions `service` has loaded for `tenant` (and those it shares with every tenant), by model. */
export function loadedFor(service: ServiceHealth, tenant: string): Record<string, string> {
  return Object.fromEntries(service.models.filter(ofTenant(tenant)).map((m) => [m.model, m.version]));
}

/**
 * A snapshot as one tenant's caller may see it: platform figures, and only that tenant's model versions
 * and alerts.
 */
export function forTenant(s: OverviewSnapshot, tenant: string, limit = 50): OverviewSnapshot {
  return {
    ...s,
    services: s.services.map((x) => ({ ...x, models: x.models.filter(ofTenant(tenant)) })),
    alerts: s.alerts.filter(ofTenant(tenant)).slice(0, limit),
  };
}

/** Loaded versions from a service's /status (`models: [{ tenant, model, version }]`). */
export function modelsFromStatus(status: unknown): LoadedModel[] {
  const models = (status as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) return [];
  const out: LoadedModel[] = [];
  for (const m of models as unknown[]) {
    const { tenant, model, version } = (m ?? {}) as { tenant?: unknown; model?: unknown; version?: unknown };
    if (typeof model === 'string' && typeof version === 'string')
      out.push({ tenant: typeof tenant === 'string' ? tenant : null, model, version });
  }
  return out;
}
