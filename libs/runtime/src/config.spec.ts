import {
  checkCommonConfig,
  commonConfig,
  ConfigError,
  env,
  forgetConfig,
  modelConfig,
  parseDuration,
  readConfig,
  describeConfig,
} from './config';
import { generateModelKeys } from './model-signing';

test('reads defaults and parses every kind', () => {
  const spec = {
    a: env.int('A', { default: 3, min: 1 }),
    b: env.bool('B', { default: false }),
    c: env.duration('C', { default: 1000 }),
    d: env.list('D', { default: ['cpu'], allowed: ['cuda', 'cpu'] }),
    e: env.optionalString('E'),
  };
  expect(readConfig(spec, { B: 'yes', C: '2m', D: 'cuda, cpu' })).toEqual({
    a: 3,
    b: true,
    c: 120_000,
    d: ['cuda', 'cpu'],
    e: undefined,
  });
});

test('names every bad variable at once', () => {
  let err: unknown;
  try {
    readConfig(commonConfig, {
      AISLE_GRPC_PORT: '70000',
      AISLE_LOG_LEVEL: 'verbose',
      AISLE_SHUTDOWN_TIMEOUT: 'soon',
      AISLE_METRICS_PORT: 'x',
    });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).problems).toEqual([
    'AISLE_GRPC_PORT must be <= 65535, got 70000',
    "AISLE_METRICS_PORT must be an integer, got 'x'",
    "AISLE_LOG_LEVEL must be one of debug, info, warn, error, got 'verbose'",
    "AISLE_SHUTDOWN_TIMEOUT must be a duration like 500ms, 5s, 2m or 1h, got 'soon'",
  ]);
});

test('required settings without default are reported', () => {
  expect(() => readConfig({ x: env.string('X') }, {})).toThrow('X is required');
});

test('parseDuration', () => {
  expect(parseDuration('250')).toBe(250);
  expect(parseDuration('1.5s')).toBe(1500);
  expect(parseDuration('1h')).toBe(3_600_000);
  expect(parseDuration('-1s')).toBeUndefined();
});

test('describeConfig renders a markdown table', () => {
  expect(describeConfig({ p: env.port('P', { default: 1, description: 'port' }) })).toBe(
    '| variable | default | meaning |\n|---|---|---|\n| `P` | `1` | port |',
  );
});

test('AISLE_STORE_URL is checked when the configuration is read', () => {
  const read = (url: string) => readConfig({ storeUrl: commonConfig.storeUrl }, { AISLE_STORE_URL: url }).storeUrl;
  expect(read('sqlite:./.aisle/aisle.db?busy_timeout=100')).toBe('sqlite:./.aisle/aisle.db?busy_timeout=100');
  expect(read('mongodb://a:27017,b:27017/aisle?replicaSet=rs0')).toBe('mongodb://a:27017,b:27017/aisle?replicaSet=rs0');
  expect(read('mongodb+srv://user:pw@cluster.example.net/aisle')).toContain('cluster.example.net');
  const problem = (url: string) => {
    try {
      read(url);
    } catch (err) {
      return (err as ConfigError).problems[0];
    }
    return undefined;
  };
  expect(problem('postgres://u:pw@db/aisle')).toBe(
    "AISLE_STORE_URL must be sqlite:<path> or mongodb://<host>/<db>, got 'postgres://u:***@db/aisle'",
  );
  expect(problem('sqlite:')).toMatch(/^AISLE_STORE_URL needs a file path/);
  expect(problem('sqlite:x.db?busy_timeout=soon')).toMatch(/busy_timeout must be a number/);
  expect(problem('sqlite:x.db?timeout=5')).toMatch(/unknown sqlite option 'timeout'/);
  expect(problem('mongodb://')).toMatch(/^AISLE_STORE_URL (names no MongoDB host|is not a valid MongoDB URL)/);
});

test('placeholder secrets and unsigned models in production stop the start, each variable named', () => {
  const keys = generateModelKeys();
  const spec = { ...commonConfig, ...modelConfig };
  const problems = (source: Record<string, string>, extra: Record<string, unknown> = {}) => {
    try {
      checkCommonConfig({ ...readConfig(spec, source), ...extra }, () => true);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  expect(
    problems({
      AISLE_NATS_USER: 'ingest',
      AISLE_NATS_PASSWORD: 'CHANGE_ME',
      AISLE_STORE_URL: 'mongodb+srv://aisle:change-me@db.example/aisle',
    }),
  ).toEqual([
    'AISLE_NATS_PASSWORD holds a placeholder (CHANGE_ME): set the real secret',
    'AISLE_STORE_URL holds a placeholder (change-me): set the real secret',
  ]);
  expect(problems({ AISLE_ENV: 'production' })).toEqual([
    'AISLE_MODEL_PUBLIC_KEY is required when AISLE_ENV=production (unsigned models are refused there)',
  ]);
  expect(problems({ AISLE_ENV: 'production', AISLE_MODEL_PUBLIC_KEY: keys.publicKey })).toEqual([]);
  expect(problems({ AISLE_ENV: 'development' })).toEqual([]);
  expect(problems({ AISLE_ENV: 'production' }, { modelSigningKeyFile: undefined })).toEqual([
    'AISLE_MODEL_SIGNING_KEY_FILE is required when AISLE_ENV=production (models are published signed)',
  ]);
  expect(problems({ AISLE_GRPC_ALLOWED_CLIENTS: 'ranking' })).toEqual([
    'AISLE_GRPC_ALLOWED_CLIENTS needs mTLS (AISLE_GRPC_TLS_CLIENT_CA): without client certificates no caller is known',
  ]);
  expect(() => readConfig(spec, { AISLE_GRPC_ALLOWED_CLIENTS: 'listUsers=x' })).toThrow(
    "AISLE_GRPC_ALLOWED_CLIENTS 'listUsers' is not an RPC name",
  );
  expect(() => readConfig(spec, { AISLE_MODEL_PUBLIC_KEY: 'bm90IGEga2V5' })).toThrow(
    'AISLE_MODEL_PUBLIC_KEY must be base64 of a 32-byte Ed25519 public key, or a PEM public key',
  );
});

test('a service keeping forget markers refuses to start in production without its key file (fail closed)', () => {
  const problems = (spec: typeof commonConfig, source: Record<string, string>, exists = true) => {
    try {
      checkCommonConfig(readConfig(spec, source), () => exists);
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };
  const markers = { ...commonConfig, ...forgetConfig };
  expect(problems(markers, { AISLE_ENV: 'production' })).toEqual([
    'AISLE_FORGET_KEY_FILE is required when AISLE_ENV=production (forget markers under the built-in key are guessable hashes of user ids)',
  ]);
  expect(problems(markers, { AISLE_ENV: 'production', AISLE_FORGET_KEY_FILE: '/etc/aisle/forget/key' })).toEqual([]);
  expect(problems(markers, { AISLE_ENV: 'production', AISLE_FORGET_KEY_FILE: '/etc/aisle/forget/key' }, false)).toEqual(
    ['AISLE_FORGET_KEY_FILE names a file that does not exist: /etc/aisle/forget/key'],
  );
  // Local development, the demo and the tests run without one (the built-in key).
  expect(problems(markers, {})).toEqual([]);
  expect(problems(markers, { AISLE_ENV: 'development' })).toEqual([]);
  // A service that keeps no markers is not asked for the key.
  expect(problems(commonConfig, { AISLE_ENV: 'production' })).toEqual([]);
});
