import {
  eventually,
  freePort,
  healthCheck,
  startNatsServer,
  startServiceProcess,
  type NatsServerHandle,
  type NatsServerOptions,
  type ServiceProcess,
} from '@aisle/testkit';

/** Every service of the platform as separate processes on one nats-server and one embedded store. */
export interface LocalStack {
  readonly nats: NatsServerHandle;
  readonly storeUrl: string;
  readonly services: Record<'ingest' | 'feature' | 'embedding' | 'ranking' | 'churn' | 'experiment', ServiceProcess>;
  /** The web console's process (absent when started without it). */
  readonly console: ServiceProcess | undefined;
  readonly embeddingPort: number;
  /** The web console's address, e.g. http://127.0.0.1:40123/ ('' when started without it). */
  readonly consoleUrl: string;
  /** Environment for another process (the trainer) to join the stack. */
  env(): Record<string, string>;
  /** Waits until the services have loaded what the trainer published (embedding's models, churn, the ranker and search model). */
  modelsLoaded(timeoutMs?: number): Promise<void>;
  /** Restarts embedding-inference on its fixed port (after a kill, say). */
  restartEmbedding(): Promise<ServiceProcess>;
  /** Stops services (each drains NATS and closes the store), then nats-server. */
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  storeUrl: string;
  /** Own process groups: a terminal's Ctrl-C then reaches only the parent, which stops children in order. */
  detached?: boolean;
  ranking?: Record<string, string>;
  /** Extra node arguments per service (e.g. --cpu-prof for one of them). */
  nodeArgs?: Partial<Record<string, string[]>>;
  /** How nats-server starts (a configuration file with users, say). */
  nats?: Omit<NatsServerOptions, 'detached'>;
  /** Extra environment per service (its NATS user, say), by service name. */
  serviceEnv?: (name: string) => Record<string, string>;
  /**
   * Extra environment for the console (its HTTP port defaults to any free one), or false for a stack
   * without it (a bus whose authorization names no console user yet, say).
   */
  console?: Record<string, string> | false;
}

/**
 * V8 settings of the ranking process (the same in k8s, scripts/k8s.mjs): a young generation of 64 MB
 * semi-spaces instead of 16 MB. Each request allocates a few hundred KB that die young, and a CPU profile
 * showed scavenges in a third of ranking's CPU under load; one A/B then gained (Recommend c=64 1,118 vs 695
 * QPS), a second did not reproduce it (docs/benchmarks.md): kept as harmless, not claimed as a gain.
 */
export const RANKING_NODE_OPTIONS = '--max-semi-space-size=64';

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const detached = opts.detached ?? false;
  const nats = await startNatsServer({ ...opts.nats, detached });
  const base = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: opts.storeUrl };
  const embeddingPort = await freePort();
  const start = (name: string, env: Record<string, string> = {}) =>
    startServiceProcess(
      name,
      { ...base, ...opts.serviceEnv?.(name), ...env },
      { detached, ...(opts.nodeArgs?.[name] ? { nodeArgs: opts.nodeArgs[name] } : {}) },
    );
  const [ingest, feature, experiment] = await Promise.all([start('ingest'), start('feature'), start('experiment')]);
  // Fixed ports, so that a restarted embedding-inference is found where the others (and the console) look.
  const embeddingMetricsPort = await freePort();
  const embeddingEnv = { AISLE_GRPC_PORT: String(embeddingPort), AISLE_METRICS_PORT: String(embeddingMetricsPort) };
  let embedding = await start('embedding-inference', embeddingEnv);
  const deps = {
    AISLE_FEATURE_ADDR: `127.0.0.1:${feature.grpcPort}`,
    AISLE_EMBEDDING_ADDR: `127.0.0.1:${embeddingPort}`,
  };
  // Ranking asks churn-prediction (for retention arms): a port known before both start.
  const churnPort = await freePort();
  const [ranking, churn] = await Promise.all([
    start('ranking', {
      NODE_OPTIONS: RANKING_NODE_OPTIONS,
      ...deps,
      AISLE_CHURN_ADDR: `127.0.0.1:${churnPort}`,
      ...opts.ranking,
    }),
    start('churn-prediction', { ...deps, AISLE_GRPC_PORT: String(churnPort) }),
  ]);
  const addr = (p: ServiceProcess) => `127.0.0.1:${p.grpcPort}`;
  const status = (p: ServiceProcess) => `http://127.0.0.1:${p.metricsPort ?? 0}/status`;
  const consoleProcess =
    opts.console === false
      ? undefined
      : await start('console', {
          AISLE_CONSOLE_HTTP_PORT: '0',
          AISLE_INGEST_ADDR: addr(ingest),
          AISLE_FEATURE_ADDR: addr(feature),
          AISLE_EMBEDDING_ADDR: `127.0.0.1:${embeddingPort}`,
          AISLE_RANKING_ADDR: addr(ranking),
          AISLE_CHURN_ADDR: addr(churn),
          AISLE_EXPERIMENT_ADDR: addr(experiment),
          AISLE_INGEST_STATUS_URL: status(ingest),
          AISLE_FEATURE_STATUS_URL: status(feature),
          AISLE_EMBEDDING_STATUS_URL: `http://127.0.0.1:${embeddingMetricsPort}/status`,
          AISLE_RANKING_STATUS_URL: status(ranking),
          AISLE_CHURN_STATUS_URL: status(churn),
          AISLE_EXPERIMENT_STATUS_URL: status(experiment),
          ...opts.console,
        });
  const readyUrl = consoleProcess?.logs.find((l) => l['msg'] === 'ready')?.['url'];
  const consoleUrl = typeof readyUrl === 'string' ? readyUrl : '';
  const services = { ingest, feature, embedding, ranking, churn, experiment };
  return {
    nats,
    storeUrl: opts.storeUrl,
    services,
    console: consoleProcess,
    embeddingPort,
    consoleUrl,
    env: () => ({ ...base }),
    async modelsLoaded(timeoutMs = 60_000) {
      // Embedding answers (degraded) before it has models, so its own log says when each one is active.
      const loaded = (p: () => ServiceProcess, model: string) => () =>
        p().logs.some((l) => l['msg'] === 'model active' && l['model'] === model);
      for (const model of ['sasrec', 'text_encoder'])
        await eventually(
          loaded(() => embedding, model),
          { what: `${model} loaded`, timeoutMs },
        );
      await eventually(
        async () => (await healthCheck(`127.0.0.1:${churn.grpcPort}`, 'aisle.churn.v1.ChurnService')) === 'SERVING',
        { what: 'churn model loaded', timeoutMs },
      );
      for (const model of ['ranker', 'search_ranker'])
        await eventually(
          loaded(() => ranking, model),
          { what: `${model} loaded by ranking`, timeoutMs },
        );
    },
    async restartEmbedding() {
      embedding = await start('embedding-inference', embeddingEnv);
      services.embedding = embedding;
      return embedding;
    },
    async stop() {
      await Promise.all([...Object.values(services), ...(consoleProcess ? [consoleProcess] : [])].map((s) => s.stop()));
      await nats.dispose();
    },
  };
}
