import {
  freePort,
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
  readonly services: Record<'ingest' | 'feature' | 'embedding' | 'ranking' | 'churn', ServiceProcess>;
  readonly embeddingPort: number;
  /** Environment for another process (the trainer) to join the stack. */
  env(): Record<string, string>;
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
}

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
  const [ingest, feature] = await Promise.all([start('ingest'), start('feature')]);
  const embeddingEnv = { AISLE_GRPC_PORT: String(embeddingPort) };
  let embedding = await start('embedding-inference', embeddingEnv);
  const deps = {
    AISLE_FEATURE_ADDR: `127.0.0.1:${feature.grpcPort}`,
    AISLE_EMBEDDING_ADDR: `127.0.0.1:${embeddingPort}`,
  };
  const [ranking, churn] = await Promise.all([
    start('ranking', { ...deps, ...opts.ranking }),
    start('churn-prediction', deps),
  ]);
  const services = { ingest, feature, embedding, ranking, churn };
  return {
    nats,
    storeUrl: opts.storeUrl,
    services,
    embeddingPort,
    env: () => ({ ...base }),
    async restartEmbedding() {
      embedding = await start('embedding-inference', embeddingEnv);
      services.embedding = embedding;
      return embedding;
    },
    async stop() {
      await Promise.all(Object.values(services).map((s) => s.stop()));
      await nats.dispose();
    },
  };
}
