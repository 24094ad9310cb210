import {
  commonConfig,
  ConfigError,
  DEFAULT_PORTS,
  defaultAddress,
  env,
  readConfig,
  servicePorts,
  type ConfigOf,
  type Env,
} from '@aisle/runtime';

/** The services the console watches and calls, with the variables that locate each. */
export const WATCHED_SERVICES = ['ingest', 'feature', 'embedding', 'ranking', 'churn', 'experiment'] as const;
export type WatchedService = (typeof WATCHED_SERVICES)[number];

type Watched = Exclude<keyof typeof DEFAULT_PORTS, 'console'>;
const addr = (name: string, service: Watched) =>
  env.string(`AISLE_${name.toUpperCase()}_ADDR`, {
    default: defaultAddress(service),
    description: `${service} gRPC address`,
  });
const statusUrl = (name: string, service: Watched) =>
  env.string(`AISLE_${name.toUpperCase()}_STATUS_URL`, {
    default: `http://127.0.0.1:${DEFAULT_PORTS[service].metrics}/status`,
    description: `${service} status endpoint (its metrics port's /status: loaded model versions)`,
  });

export const configSpec = {
  ...commonConfig,
  ...servicePorts('console'),
  httpHost: env.string('AISLE_CONSOLE_HTTP_HOST', {
    default: '127.0.0.1',
    description: 'address the web console listens on; anything but loopback requires AISLE_CONSOLE_AUTH',
  }),
  httpPort: env.port('AISLE_CONSOLE_HTTP_PORT', { default: 8080, description: 'web console port (0 = any free port)' }),
  auth: env.oneOf('AISLE_CONSOLE_AUTH', ['none', 'login', 'proxy'] as const, {
    default: 'none',
    description:
      '`none` (local development: loopback only, every tenant, operator), `login` (users of the access file) or `proxy` (a trusted proxy names the user)',
  }),
  accessFile: env.optionalString('AISLE_CONSOLE_ACCESS_FILE', {
    description:
      'JSON file with `users` (login: name, scrypt password hash) and `grants` (user or group -> tenants, role)',
  }),
  sessionSecret: env.optionalString('AISLE_CONSOLE_SESSION_SECRET', {
    description: 'key that signs login sessions (at least 32 characters; required with `login`)',
  }),
  sessionTtlMs: env.duration('AISLE_CONSOLE_SESSION_TTL', { default: 8 * 3_600_000, description: 'login lifetime' }),
  secureCookies: env.bool('AISLE_CONSOLE_SECURE_COOKIES', {
    default: true,
    description: 'mark the session cookie Secure (served over HTTPS, e.g. behind an ingress)',
  }),
  proxyUserHeader: env.string('AISLE_CONSOLE_PROXY_USER_HEADER', {
    default: 'x-forwarded-user',
    description: 'header in which the trusted proxy names the user (`proxy`)',
  }),
  proxyGroupsHeader: env.string('AISLE_CONSOLE_PROXY_GROUPS_HEADER', {
    default: 'x-forwarded-groups',
    description: 'header with the user\u2019s groups, comma-separated (`proxy`)',
  }),
  trustedProxies: env.list('AISLE_CONSOLE_TRUSTED_PROXIES', {
    default: [],
    description: 'addresses or CIDRs whose user header is believed (`proxy`); others get 401',
  }),
  sampleIntervalMs: env.duration('AISLE_CONSOLE_SAMPLE_INTERVAL', {
    default: 1000,
    description: 'how often the overview samples streams, consumers and services',
  }),
  deadLetterIndexSize: env.int('AISLE_CONSOLE_DLQ_INDEX', {
    default: 20_000,
    min: 100,
    max: 1_000_000,
    description: 'most recent dead letters indexed for browsing by reason',
  }),
  callDeadlineMs: env.duration('AISLE_CONSOLE_CALL_DEADLINE', {
    default: 3000,
    description: 'deadline of each gRPC call to the other services',
  }),
  ingestAddr: addr('ingest', 'ingest'),
  featureAddr: addr('feature', 'feature'),
  embeddingAddr: addr('embedding', 'embedding-inference'),
  rankingAddr: addr('ranking', 'ranking'),
  churnAddr: addr('churn', 'churn-prediction'),
  experimentAddr: addr('experiment', 'experiment'),
  ingestStatusUrl: statusUrl('ingest', 'ingest'),
  featureStatusUrl: statusUrl('feature', 'feature'),
  embeddingStatusUrl: statusUrl('embedding', 'embedding-inference'),
  rankingStatusUrl: statusUrl('ranking', 'ranking'),
  churnStatusUrl: statusUrl('churn', 'churn-prediction'),
  experimentStatusUrl: statusUrl('experiment', 'experiment'),
};

export type ConsoleConfig = ConfigOf<typeof configSpec>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Reads the configuration; refuses an open console on a non-loopback address and half-configured auth. */
export function loadConsoleConfig(source: Env = process.env): ConsoleConfig {
  const config = readConfig(configSpec, source);
  const problems: string[] = [];
  if (config.auth === 'none' && !LOOPBACK.has(config.httpHost))
    problems.push(
      `AISLE_CONSOLE_AUTH is none but AISLE_CONSOLE_HTTP_HOST is ${config.httpHost}: without login the console listens on loopback only`,
    );
  if (config.auth !== 'none' && !config.accessFile)
    problems.push(`AISLE_CONSOLE_ACCESS_FILE is required with AISLE_CONSOLE_AUTH=${config.auth}`);
  if (config.auth === 'login' && (config.sessionSecret?.length ?? 0) < 32)
    problems.push('AISLE_CONSOLE_SESSION_SECRET must be at least 32 characters with AISLE_CONSOLE_AUTH=login');
  if (config.auth === 'proxy' && config.trustedProxies.length === 0)
    problems.push('AISLE_CONSOLE_TRUSTED_PROXIES is required with AISLE_CONSOLE_AUTH=proxy');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

export function serviceTargets(config: ConsoleConfig): Record<WatchedService, { addr: string; statusUrl: string }> {
  return {
    ingest: { addr: config.ingestAddr, statusUrl: config.ingestStatusUrl },
    feature: { addr: config.featureAddr, statusUrl: config.featureStatusUrl },
    embedding: { addr: config.embeddingAddr, statusUrl: config.embeddingStatusUrl },
    ranking: { addr: config.rankingAddr, statusUrl: config.rankingStatusUrl },
    churn: { addr: config.churnAddr, statusUrl: config.churnStatusUrl },
    experiment: { addr: config.experimentAddr, statusUrl: config.experimentStatusUrl },
  };
}
