import { AisleError } from '@aisle/contracts';
import type { KeyObject } from 'node:crypto';
import { parseClientAllowList, type ClientAllowList } from './grpc';
import { parseModelPublicKey } from './model-signing';
import { parseTenantList, type DeclaredTenant } from './tenants';
import { readCallersFile, type CallerPolicy } from './callers';

/**
 * Typed environment configuration, read and validated once at start. Every invalid or missing variable
 * is reported together, so an operator fixes them in one round.
 */

export class ConfigError extends AisleError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Setting<T> {
  readonly variable: string;
  readonly description: string;
  /** Returns the parsed value or throws an Error whose message says what is wrong. */
  parse(raw: string | undefined): T;
  readonly defaultText?: string;
}

interface Options<T> {
  default?: T;
  description?: string;
}

function setting<T>(
  variable: string,
  opts: Options<T>,
  parseDefined: (raw: string) => T,
  defaultText?: string,
): Setting<T> {
  return {
    variable,
    description: opts.description ?? '',
    ...(opts.default !== undefined ? { defaultText: defaultText ?? (String(opts.default) || '(empty)') } : {}),
    parse(raw) {
      if (raw === undefined || raw === '') {
        if (opts.default !== undefined) return opts.default;
        throw new Error('is required');
      }
      return parseDefined(raw);
    },
  };
}

export const env = {
  string(variable: string, opts: Options<string> & { pattern?: RegExp } = {}): Setting<string> {
    return setting(variable, opts, (raw) => {
      if (opts.pattern && !opts.pattern.test(raw)) throw new Error(`must match ${String(opts.pattern)}`);
      return raw;
    });
  },
  optionalString(variable: string, opts: { description?: string } = {}): Setting<string | undefined> {
    return {
      variable,
      description: opts.description ?? '',
      defaultText: '(unset)',
      parse: (raw) => (raw === undefined || raw === '' ? undefined : raw),
    };
  },
  int(variable: string, opts: Options<number> & { min?: number; max?: number } = {}): Setting<number> {
    return setting(variable, opts, (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`must be an integer, got '${raw}'`);
      const n = Number(raw);
      if (opts.min !== undefined && n < opts.min) throw new Error(`must be >= ${opts.min}, got ${n}`);
      if (opts.max !== undefined && n > opts.max) throw new Error(`must be <= ${opts.max}, got ${n}`);
      return n;
    });
  },
  number(variable: string, opts: Options<number> & { min?: number; max?: number } = {}): Setting<number> {
    return setting(variable, opts, (raw) => {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new Error(`must be a finite number, got '${raw}'`);
      if (opts.min !== undefined && n < opts.min) throw new Error(`must be >= ${opts.min}, got ${n}`);
      if (opts.max !== undefined && n > opts.max) throw new Error(`must be <= ${opts.max}, got ${n}`);
      return n;
    });
  },
  port(variable: string, opts: Options<number> = {}): Setting<number> {
    return env.int(variable, { ...opts, min: 0, max: 65535 });
  },
  bool(variable: string, opts: Options<boolean> = {}): Setting<boolean> {
    return setting(variable, opts, (raw) => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new Error(`must be true or false, got '${raw}'`);
    });
  },
  oneOf<const T extends string>(variable: string, values: readonly T[], opts: Options<T> = {}): Setting<T> {
    return setting(variable, opts, (raw) => {
      const v = raw.trim().toLowerCase();
      if (!(values as readonly string[]).includes(v))
        throw new Error(`must be one of ${values.join(', ')}, got '${raw}'`);
      return v as T;
    });
  },
  /** Durations like `250ms`, `5s`, `2m`, `1h`, or a bare number of milliseconds. */
  duration(variable: string, opts: Options<number> = {}): Setting<number> {
    return setting(
      variable,
      opts,
      (raw) => {
        const ms = parseDuration(raw);
        if (ms === undefined) throw new Error(`must be a duration like 500ms, 5s, 2m or 1h, got '${raw}'`);
        return ms;
      },
      opts.default !== undefined ? `${opts.default}ms` : undefined,
    );
  },
  list(variable: string, opts: Options<string[]> & { allowed?: readonly string[] } = {}): Setting<string[]> {
    return setting(
      variable,
      opts,
      (raw) => {
        const items = raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
        const bad = opts.allowed ? items.filter((i) => !opts.allowed?.includes(i)) : [];
        if (bad.length > 0) throw new Error(`unknown value(s) ${bad.join(', ')}; allowed: ${opts.allowed?.join(', ')}`);
        return items;
      },
      opts.default?.join(','),
    );
  },
};

/** Hides the password of `scheme://user:password@host` URLs in messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/**
 * The grammar of AISLE_STORE_URL, checked when the configuration is read (so that a typo stops the
 * start with the variable named, before anything connects): `sqlite:<path>[?busy_timeout=<ms>]` or a
 * `mongodb://` / `mongodb+srv://` URL with a host. The store adapters parse the rest when they open.
 */
export function checkStoreUrl(raw: string): string {
  const shown = redactUrl(raw);
  if (raw.startsWith('sqlite:')) {
    const [path = '', query = ''] = raw.slice('sqlite:'.length).split('?');
    if (!path) throw new Error(`needs a file path after 'sqlite:', got '${shown}'`);
    for (const [key, value] of new URLSearchParams(query)) {
      if (key !== 'busy_timeout') throw new Error(`unknown sqlite option '${key}' in '${shown}' (known: busy_timeout)`);
      if (!/^\d+$/.test(value)) throw new Error(`busy_timeout must be a number of milliseconds, got '${value}'`);
    }
    return raw;
  }
  if (/^mongodb(\+srv)?:\/\//.test(raw)) {
    let host = '';
    try {
      // The driver accepts comma-separated hosts, which URL does not: check the first.
      host = new URL(raw.replace(/^(mongodb(\+srv)?:\/\/[^/,?]*),[^/?]*/, '$1')).hostname;
    } catch {
      throw new Error(`is not a valid MongoDB URL: '${shown}'`);
    }
    if (!host) throw new Error(`names no MongoDB host: '${shown}'`);
    return raw;
  }
  throw new Error(`must be sqlite:<path> or mongodb://<host>/<db>, got '${shown}'`);
}

export function parseDuration(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

export type ConfigSpec = Record<string, Setting<unknown>>;
export type ConfigOf<S extends ConfigSpec> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** Reads every setting of `spec` from `source`; throws one ConfigError naming every bad variable. */
export function readConfig<S extends ConfigSpec>(spec: S, source: Env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(spec)) {
    try {
      out[key] = s.parse(source[s.variable]);
    } catch (err) {
      problems.push(`${s.variable} ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

/** Markdown table of a spec's variables, for READMEs and `--help`. */
export function describeConfig(spec: ConfigSpec): string {
  const rows = Object.values(spec).map(
    (s) => `| \`${s.variable}\` | \`${s.defaultText ?? '(required)'}\` | ${s.description} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/**
 * Each service's own default ports, so that the services run side by side on one machine with no
 * settings at all, and the default addresses their clients dial (AISLE_FEATURE_ADDR,
 * AISLE_EMBEDDING_ADDR) find them.
 */
export const DEFAULT_PORTS = {
  ranking: { grpc: 50051, metrics: 9464 },
  feature: { grpc: 50052, metrics: 9465 },
  'embedding-inference': { grpc: 50053, metrics: 9466 },
  ingest: { grpc: 50054, metrics: 9467 },
  'churn-prediction': { grpc: 50055, metrics: 9468 },
  experiment: { grpc: 50056, metrics: 9469 },
  console: { grpc: 50057, metrics: 9470 },
} as const;

/** The gRPC and metrics port settings of one service, with its own defaults. */
export function servicePorts(service: keyof typeof DEFAULT_PORTS) {
  return {
    grpcPort: env.port('AISLE_GRPC_PORT', {
      default: DEFAULT_PORTS[service].grpc,
      description: 'gRPC port (0 = any free port)',
    }),
    metricsPort: env.int('AISLE_METRICS_PORT', {
      default: DEFAULT_PORTS[service].metrics,
      min: -1,
      max: 65535,
      description: 'Prometheus /metrics port (0 = any free port, -1 = off)',
    }),
  };
}

/** A client's default address of another service: loopback, at that service's default port. */
export function defaultAddress(service: keyof typeof DEFAULT_PORTS): string {
  return `127.0.0.1:${DEFAULT_PORTS[service].grpc}`;
}

/** Variables every service reads. */
/**
 * The gRPC admission-control settings (see admission.ts), with a service's own defaults: off for most
 * services, on for those that must shed load rather than queue past deadlines (ranking).
 */
export function admissionConfig(defaults: { maxConcurrent: number; maxQueue: number }) {
  return {
    grpcMaxConcurrent: env.int('AISLE_GRPC_MAX_CONCURRENT', {
      default: defaults.maxConcurrent,
      min: 0,
      description: 'calls of one RPC worked on at once; more wait in a queue (0 = no limit)',
    }),
    grpcMaxQueue: env.int('AISLE_GRPC_MAX_QUEUE', {
      default: defaults.maxQueue,
      min: 0,
      description:
        'calls of one RPC waiting for a slot; beyond it RESOURCE_EXHAUSTED at once, with a grpc-retry-pushback-ms hint',
    }),
  };
}

export const commonConfig = {
  deployment: env.oneOf('AISLE_ENV', ['development', 'production'] as const, {
    default: 'development',
    description:
      "`production` refuses unsigned models (AISLE_MODEL_PUBLIC_KEY, and the trainer's AISLE_MODEL_SIGNING_KEY_FILE, are required) and guessable forget markers (AISLE_FORGET_KEY_FILE is required where markers are kept); `development` loads unsigned models with a warning and keys markers with a built-in key",
  }),
  serviceName: env.string('AISLE_SERVICE_NAME', {
    default: '',
    description: 'Overrides the service name in logs, metrics and traces',
  }),
  tenants: {
    variable: 'AISLE_TENANTS',
    description:
      'declared tenants, comma-separated, each optionally with its rate limit per instance in requests (Track: events) per second: `default,shop-b=200`; input and requests naming any other tenant are refused',
    defaultText: 'default',
    parse: (raw: string | undefined): DeclaredTenant[] =>
      parseTenantList(raw === undefined || raw === '' ? 'default' : raw),
  } satisfies Setting<DeclaredTenant[]>,
  tenantsBucket: env.bool('AISLE_TENANTS_BUCKET', {
    default: true,
    description:
      'also serve the tenants put into the NATS KV bucket `aisle-tenants` (key = tenant, value = `{"rateLimit": 200}` or empty), followed at run time: a tenant is added without a redeploy',
  }),
  natsUrl: env.string('AISLE_NATS_URL', {
    default: 'nats://127.0.0.1:4222',
    description: 'NATS server URL(s), comma-separated',
  }),
  natsUser: env.optionalString('AISLE_NATS_USER', { description: 'NATS user (with AISLE_NATS_PASSWORD)' }),
  natsPassword: env.optionalString('AISLE_NATS_PASSWORD', { description: 'NATS password' }),
  natsToken: env.optionalString('AISLE_NATS_TOKEN', { description: 'NATS token' }),
  natsCredsFile: env.optionalString('AISLE_NATS_CREDS_FILE', { description: 'NATS credentials (.creds) file' }),
  natsTlsCa: env.optionalString('AISLE_NATS_TLS_CA', { description: 'CA file to verify the NATS server; enables TLS' }),
  natsTlsCert: env.optionalString('AISLE_NATS_TLS_CERT', { description: 'client certificate for NATS mTLS' }),
  natsTlsKey: env.optionalString('AISLE_NATS_TLS_KEY', { description: 'client key for NATS mTLS' }),
  natsStreamReplicas: env.int('AISLE_NATS_STREAM_REPLICAS', {
    default: 1,
    min: 1,
    max: 5,
    description: 'JetStream replicas for provisioned streams',
  }),
  ackWaitMs: env.duration('AISLE_NATS_ACK_WAIT', {
    default: 30_000,
    description: 'redelivery timeout for messages a crashed consumer never acknowledged',
  }),
  storeUrl: setting(
    'AISLE_STORE_URL',
    { default: 'sqlite:./.aisle/aisle.db', description: '`sqlite:<path>` (embedded) or `mongodb://...`' },
    checkStoreUrl,
  ),
  grpcHost: env.string('AISLE_GRPC_HOST', { default: '0.0.0.0', description: 'gRPC bind address' }),
  grpcPort: env.port('AISLE_GRPC_PORT', { default: 50051, description: 'gRPC port (0 = any free port)' }),
  grpcTlsCert: env.optionalString('AISLE_GRPC_TLS_CERT', { description: 'server certificate; enables TLS' }),
  grpcTlsKey: env.optionalString('AISLE_GRPC_TLS_KEY', { description: 'server key' }),
  grpcTlsClientCa: env.optionalString('AISLE_GRPC_TLS_CLIENT_CA', {
    description:
      'CA for client certificates; enables mTLS: a certificate is asked for, not required, and a call presenting one that does not verify (issuer, signature, dates) is UNAUTHENTICATED, whatever token it carries; with AISLE_GRPC_CALLERS_FILE a caller may use a bearer token instead of a certificate, without it every call needs a verified certificate (UNAUTHENTICATED otherwise)',
  }),
  grpcAllowedClients: {
    variable: 'AISLE_GRPC_ALLOWED_CLIENTS',
    description:
      'with mTLS, the client certificate identities (CN or DNS/URI SAN) allowed to call: `ranking,churn-prediction`, or per RPC `*=ranking;ListUsers=churn-prediction`; unlisted methods are refused',
    defaultText: '(unset: every client the CA vouches for)',
    parse: (raw: string | undefined): ClientAllowList | undefined =>
      raw === undefined || raw.trim() === '' ? undefined : parseClientAllowList(raw),
  } satisfies Setting<ClientAllowList | undefined>,
  grpcCallers: {
    variable: 'AISLE_GRPC_CALLERS_FILE',
    description:
      'JSON file (from a Secret; re-read when it changes) naming each caller of the data APIs, recognized by bearer token (`token_sha256`) or mTLS identities, with the tenants and RPCs it may use: others get UNAUTHENTICATED or PERMISSION_DENIED; with AISLE_ENV=production this or mTLS client certificates (AISLE_GRPC_TLS_CLIENT_CA) is required',
    defaultText: '(unset: every caller that reaches the port, for local development)',
    parse: (raw: string | undefined): CallerPolicy | undefined =>
      raw === undefined || raw.trim() === '' ? undefined : readCallersFile(raw),
  } satisfies Setting<CallerPolicy | undefined>,
  grpcCallersReloadMs: env.duration('AISLE_GRPC_CALLERS_RELOAD', {
    default: 10_000,
    description: 'how often the callers file is checked for changes (a changed file applies without a restart)',
  }),
  grpcClientTlsCa: env.optionalString('AISLE_GRPC_CLIENT_TLS_CA', {
    description: 'CA to verify the services this one calls; enables TLS on outgoing gRPC',
  }),
  grpcClientTlsCert: env.optionalString('AISLE_GRPC_CLIENT_TLS_CERT', {
    description: 'client certificate presented on outgoing gRPC (mTLS)',
  }),
  grpcClientTlsKey: env.optionalString('AISLE_GRPC_CLIENT_TLS_KEY', {
    description: 'client key for outgoing gRPC (mTLS)',
  }),
  grpcHealthPort: env.int('AISLE_GRPC_HEALTH_PORT', {
    default: -1,
    min: -1,
    max: 65535,
    description: 'plaintext port serving only grpc.health.v1, for kubelet probes (they cannot speak TLS); -1 = off',
  }),
  grpcMaxMessageBytes: env.int('AISLE_GRPC_MAX_MESSAGE_BYTES', {
    default: 4 * 1024 * 1024,
    min: 1024,
    description: 'largest gRPC request accepted',
  }),
  ...admissionConfig({ maxConcurrent: 0, maxQueue: 0 }),
  metricsPort: env.int('AISLE_METRICS_PORT', {
    default: 9464,
    min: -1,
    max: 65535,
    description: 'Prometheus /metrics port (0 = any free port, -1 = off)',
  }),
  logLevel: env.oneOf('AISLE_LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, {
    default: 'info',
    description: 'log level',
  }),
  shutdownTimeoutMs: env.duration('AISLE_SHUTDOWN_TIMEOUT', {
    default: 20_000,
    description: 'deadline for a graceful shutdown',
  }),
  drainDelayMs: env.duration('AISLE_DRAIN_DELAY', {
    default: 0,
    description: 'wait after NOT_SERVING before draining (let load balancers notice)',
  }),
  otlpEndpoint: env.optionalString('OTEL_EXPORTER_OTLP_ENDPOINT', {
    description: 'OTLP/HTTP endpoint for traces; unset = no export',
  }),
} satisfies ConfigSpec;

const MIB = 1024 * 1024;

/** Services that answer with a requested model version besides the active one (an experiment arm's pin). */
export const pinnedVersionsConfig = {
  pinnedVersions: env.int('AISLE_PINNED_MODEL_VERSIONS', {
    default: 2,
    min: 0,
    max: 16,
    description:
      'most model versions of each kind kept loaded per tenant besides the active one, for requests that name a version (experiment arms); the least recently used is unloaded first; 0 refuses such requests',
  }),
} satisfies ConfigSpec;

/** Variables of the services that load models (and of the trainer, which publishes and scores them). */
export const modelConfig = {
  modelPublicKey: {
    variable: 'AISLE_MODEL_PUBLIC_KEY',
    description:
      'pinned Ed25519 public key (base64 of the raw key, as `pnpm aisle model-keys` prints, or PEM): only artifacts the trainer signed with its private key load; required when AISLE_ENV=production',
    defaultText: '(unset)',
    parse: (raw: string | undefined): KeyObject | undefined =>
      raw === undefined || raw.trim() === '' ? undefined : parseModelPublicKey(raw),
  } satisfies Setting<KeyObject | undefined>,
  modelMaxBytes: env.int('AISLE_MODEL_MAX_BYTES', {
    default: 256 * MIB,
    min: 1024,
    description: 'largest ONNX graph loaded or published; larger ones are refused from their metadata, unread',
  }),
  modelSidecarMaxBytes: env.int('AISLE_MODEL_SIDECAR_MAX_BYTES', {
    default: 64 * MIB,
    min: 1024,
    description: 'largest model sidecar (JSON: vocabulary, settings) loaded or published',
  }),
  modelBucketMaxBytes: env.int('AISLE_MODEL_BUCKET_MAX_BYTES', {
    default: 4096 * MIB,
    min: MIB,
    description: 'size cap of the whole `aisle-models` bucket (set when the bucket is created)',
  }),
} satisfies ConfigSpec;

export type ModelConfig = ConfigOf<typeof modelConfig>;

/**
 * Variables of the services that keep forget markers (ingest, feature, the trainer): a forgotten user's
 * events still in flight, or replayed, are dropped rather than re-creating their data.
 */
export const forgetConfig = {
  forgetKeyFile: env.optionalString('AISLE_FORGET_KEY_FILE', {
    description:
      'file (from a Secret; `openssl rand -base64 32`) holding the key of the keyed hash (HMAC-SHA256) by which forget markers name a user (never by the id); services sharing a store need the same key, kept for as long as the markers (a new key orphans them); required when AISLE_ENV=production; unset in development: a built-in key, which makes the markers plain (guessable) hashes',
  }),
  forgetMarkerRetentionMs: env.duration('AISLE_FORGET_MARKER_RETENTION', {
    default: 35 * 24 * 3_600_000,
    description:
      'how long a forget marker is kept: events of the user that occurred before the request are dropped while it lasts; longer than the streams keep events (30 days), so no replay outlives it',
  }),
} satisfies ConfigSpec;

export type ForgetConfig = ConfigOf<typeof forgetConfig>;

/** Values that a template or example left for an operator to replace; never a real secret. */
export const SECRET_PLACEHOLDER = /CHANGE[_-]?ME|REPLACE[_-]?ME|PLACEHOLDER/i;

type CommonSecurity = {
  readonly deployment?: 'development' | 'production';
  readonly storeUrl?: string;
  /** Present (maybe undefined) only in the configuration of services that load models. */
  readonly modelPublicKey?: KeyObject | undefined;
  /** Present only in the trainer's configuration. */
  readonly modelSigningKeyFile?: string | undefined;
  /** Present (maybe undefined) only in the configuration of services that keep forget markers. */
  readonly forgetKeyFile?: string | undefined;
  readonly natsUser: string | undefined;
  readonly natsPassword: string | undefined;
  readonly natsToken: string | undefined;
  readonly natsCredsFile: string | undefined;
  readonly natsTlsCa: string | undefined;
  readonly natsTlsCert: string | undefined;
  readonly natsTlsKey: string | undefined;
  readonly grpcTlsCert: string | undefined;
  readonly grpcTlsKey: string | undefined;
  readonly grpcTlsClientCa: string | undefined;
  readonly grpcAllowedClients?: ClientAllowList | undefined;
  readonly grpcClientTlsCa: string | undefined;
  readonly grpcClientTlsCert: string | undefined;
  readonly grpcClientTlsKey: string | undefined;
};

/**
 * Checks that belong to combinations of the common variables (a certificate without its key, two NATS
 * auth methods, files that are not there, secrets still holding a template's `CHANGE_ME`, no pinned
 * model key or forget key in production), so a half-configured security switch stops the start with the
 * variables named, rather than silently running in plaintext, loading unsigned models or keeping guessable
 * forget markers.
 */
export function checkCommonConfig(c: CommonSecurity, exists: (path: string) => boolean): void {
  const problems: string[] = [];
  const pair = (a: string, av: string | undefined, b: string, bv: string | undefined) => {
    if (Boolean(av) !== Boolean(bv)) problems.push(`${av ? b : a} is required when ${av ? a : b} is set`);
  };
  pair('AISLE_GRPC_TLS_CERT', c.grpcTlsCert, 'AISLE_GRPC_TLS_KEY', c.grpcTlsKey);
  if (c.grpcTlsClientCa && !c.grpcTlsCert)
    problems.push(
      'AISLE_GRPC_TLS_CLIENT_CA needs AISLE_GRPC_TLS_CERT and AISLE_GRPC_TLS_KEY (mTLS is TLS plus client certificates)',
    );
  if (c.grpcAllowedClients && !c.grpcTlsClientCa)
    problems.push(
      'AISLE_GRPC_ALLOWED_CLIENTS needs mTLS (AISLE_GRPC_TLS_CLIENT_CA): without client certificates no caller is known',
    );
  pair('AISLE_GRPC_CLIENT_TLS_CERT', c.grpcClientTlsCert, 'AISLE_GRPC_CLIENT_TLS_KEY', c.grpcClientTlsKey);
  if (c.grpcClientTlsCert && !c.grpcClientTlsCa)
    problems.push('AISLE_GRPC_CLIENT_TLS_CERT needs AISLE_GRPC_CLIENT_TLS_CA');
  pair('AISLE_NATS_TLS_CERT', c.natsTlsCert, 'AISLE_NATS_TLS_KEY', c.natsTlsKey);
  pair('AISLE_NATS_USER', c.natsUser, 'AISLE_NATS_PASSWORD', c.natsPassword);
  const methods = [
    c.natsUser && 'AISLE_NATS_USER',
    c.natsToken && 'AISLE_NATS_TOKEN',
    c.natsCredsFile && 'AISLE_NATS_CREDS_FILE',
  ].filter(Boolean);
  if (methods.length > 1) problems.push(`use one NATS authentication method, not ${methods.join(' and ')}`);
  const files: Array<[string, string | undefined]> = [
    ['AISLE_GRPC_TLS_CERT', c.grpcTlsCert],
    ['AISLE_GRPC_TLS_KEY', c.grpcTlsKey],
    ['AISLE_GRPC_TLS_CLIENT_CA', c.grpcTlsClientCa],
    ['AISLE_GRPC_CLIENT_TLS_CA', c.grpcClientTlsCa],
    ['AISLE_GRPC_CLIENT_TLS_CERT', c.grpcClientTlsCert],
    ['AISLE_GRPC_CLIENT_TLS_KEY', c.grpcClientTlsKey],
    ['AISLE_NATS_CREDS_FILE', c.natsCredsFile],
    ['AISLE_NATS_TLS_CA', c.natsTlsCa],
    ['AISLE_NATS_TLS_CERT', c.natsTlsCert],
    ['AISLE_NATS_TLS_KEY', c.natsTlsKey],
  ];
  for (const [name, path] of files)
    if (path && !exists(path)) problems.push(`${name} names a file that does not exist: ${path}`);
  const secrets: Array<[string, string | undefined]> = [
    ['AISLE_NATS_PASSWORD', c.natsPassword],
    ['AISLE_NATS_TOKEN', c.natsToken],
    ['AISLE_STORE_URL', c.storeUrl],
  ];
  for (const [name, value] of secrets)
    if (value && SECRET_PLACEHOLDER.test(value))
      problems.push(`${name} holds a placeholder (${SECRET_PLACEHOLDER.exec(value)?.[0]}): set the real secret`);
  if (c.deployment === 'production' && 'modelSigningKeyFile' in c) {
    if (!c.modelSigningKeyFile)
      problems.push('AISLE_MODEL_SIGNING_KEY_FILE is required when AISLE_ENV=production (models are published signed)');
  } else if (c.deployment === 'production' && 'modelPublicKey' in c && !c.modelPublicKey)
    problems.push('AISLE_MODEL_PUBLIC_KEY is required when AISLE_ENV=production (unsigned models are refused there)');
  if (c.modelSigningKeyFile && !exists(c.modelSigningKeyFile))
    problems.push(`AISLE_MODEL_SIGNING_KEY_FILE names a file that does not exist: ${c.modelSigningKeyFile}`);
  if (c.deployment === 'production' && 'forgetKeyFile' in c && !c.forgetKeyFile)
    problems.push(
      'AISLE_FORGET_KEY_FILE is required when AISLE_ENV=production (forget markers under the built-in key are guessable hashes of user ids)',
    );
  if (c.forgetKeyFile && !exists(c.forgetKeyFile))
    problems.push(`AISLE_FORGET_KEY_FILE names a file that does not exist: ${c.forgetKeyFile}`);
  if (problems.length > 0) throw new ConfigError(problems);
}
