import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

export class MetricTypeError extends Error {
  override readonly name = 'MetricTypeError';
}

function getOrCreate<M>(
  registry: Registry,
  name: string,
  kind: abstract new (...args: never[]) => M,
  make: () => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return make();
  if (!(existing instanceof kind)) throw new MetricTypeError(`metric ${name} is already registered with another type`);
  return existing;
}

/**
 * The one way to get a metric: the registry's existing one of that name, or a new one registered there.
 * Services started in one process (tests) and code that runs once per instance or consumer may call it
 * any number of times.
 */
export function counter<L extends string = string>(
  registry: Registry,
  cfg: Omit<CounterConfiguration<L>, 'registers'>,
): Counter<L> {
  return getOrCreate(registry, cfg.name, Counter<L>, () => new Counter<L>({ ...cfg, registers: [registry] }));
}

export function gauge<L extends string = string>(
  registry: Registry,
  cfg: Omit<GaugeConfiguration<L>, 'registers'>,
): Gauge<L> {
  return getOrCreate(registry, cfg.name, Gauge<L>, () => new Gauge<L>({ ...cfg, registers: [registry] }));
}

export function histogram<L extends string = string>(
  registry: Registry,
  cfg: Omit<HistogramConfiguration<L>, 'registers'>,
): Histogram<L> {
  return getOrCreate(registry, cfg.name, Histogram<L>, () => new Histogram<L>({ ...cfg, registers: [registry] }));
}

/** A registry per service, so that several services can share one process in tests. */
export function createMetricsRegistry(service: string, opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'aisle_' });
  return registry;
}

/** `counter` with positional arguments (the older spelling; same get-or-create). */
export function counterIn<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  return counter<L>(registry, { name, help, labelNames: [...labelNames] });
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text format) and `/status` (JSON from `status()`: loaded models,
 * execution providers, dependencies) on `port`; 0 picks a free port.
 */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  host = '0.0.0.0',
  status: () => unknown = () => ({}),
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/status' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status()));
      return;
    }
    if (req.url === '/metrics' && req.method === 'GET') {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
