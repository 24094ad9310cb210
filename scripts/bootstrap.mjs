// Installs what a fresh machine (Node 20 + npm only) lacks, then builds. Plain Node, no dependencies,
// because it runs before anything else is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PNPM_VERSION = '12.4.2';
const localTools = join(root, '.aisle', 'tools');

function log(msg) {
  process.stderr.write(`[bootstrap] ${msg}\n`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: process.env, ...opts });
  return r.status === 0;
}

function output(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: process.env });
  return r.status === 0 ? r.stdout.trim() : null;
}

function prependPath(dir) {
  process.env.PATH = `${dir}${delimiter}${process.env.PATH ?? ''}`;
}

function ensureNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 10)) {
    throw new Error(`Node >= 20.10 required, found ${process.versions.node}`);
  }
}

function ensurePnpm() {
  prependPath(join(localTools, 'node_modules', '.bin'));
  const v = output('pnpm', ['--version']);
  if (v && v.split('.')[0] === PNPM_VERSION.split('.')[0]) return;
  log(`pnpm ${PNPM_VERSION} not found (have: ${v ?? 'none'}); installing`);
  if (run('npm', ['install', '-g', `pnpm@${PNPM_VERSION}`]) && output('pnpm', ['--version'])?.startsWith('12.')) return;
  // No permission for a global install: keep a project-local copy instead.
  mkdirSync(localTools, { recursive: true });
  if (!run('npm', ['install', '--no-save', '--prefix', localTools, `pnpm@${PNPM_VERSION}`])) {
    throw new Error('could not install pnpm');
  }
}

export function findNatsServer() {
  const candidates = [
    process.env.AISLE_NATS_SERVER_BIN,
    '/usr/sbin/nats-server',
    '/usr/bin/nats-server',
    '/usr/local/bin/nats-server',
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return output('sh', ['-c', 'command -v nats-server']) || null;
}

/** Installs Debian packages with apt-get (as root, or with password-less sudo); false if that failed. */
function aptInstall(packages) {
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  const apt = (...a) => (sudo.length ? run(sudo[0], [...sudo.slice(1), 'apt-get', ...a]) : run('apt-get', a));
  process.env.DEBIAN_FRONTEND = 'noninteractive';
  if (apt('install', '-y', ...packages)) return true;
  apt('update');
  return apt('install', '-y', ...packages);
}

function ensureNatsServer() {
  if (findNatsServer()) return;
  log('nats-server not found; installing the Debian package');
  if (!aptInstall(['nats-server'])) {
    throw new Error(
      'could not install nats-server: install it yourself (apt-get install nats-server) or set AISLE_NATS_SERVER_BIN',
    );
  }
}

/** The Python the strict reflection test runs: Debian's, whose grpcio and protobuf come from apt. */
export const STRICT_CLIENT_PYTHON = '/usr/bin/python3';

function hasStrictClient() {
  return output(STRICT_CLIENT_PYTHON, ['-c', 'import grpc, google.protobuf']) !== null;
}

/**
 * The reflection test's strict client (a descriptor pool built only from what a server reflects, as
 * grpcurl does) needs Debian's python3-grpcio and python3-protobuf.
 */
function ensureStrictReflectionClient() {
  if (hasStrictClient()) return;
  log('python3-grpcio / python3-protobuf not found; installing the Debian packages');
  if (!aptInstall(['python3-grpcio', 'python3-protobuf']) || !hasStrictClient()) {
    throw new Error('could not install the strict reflection client: apt-get install python3-grpcio python3-protobuf');
  }
}

export function findChromium() {
  const candidates = [process.env.AISLE_CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((c) => c && existsSync(c)) ?? null;
}

/** The console's browser tests (and `npm run demo -- --once` screenshots) drive Debian's Chromium. */
function ensureChromium() {
  if (findChromium()) return;
  log('chromium not found; installing the Debian package (for the console browser tests)');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const apt = (...a) => (sudo.length ? run(sudo[0], [...sudo.slice(1), 'apt-get', ...a]) : run('apt-get', a));
  process.env.DEBIAN_FRONTEND = 'noninteractive';
  if (!apt('install', '-y', '--no-install-recommends', 'chromium')) {
    apt('update');
    if (!apt('install', '-y', '--no-install-recommends', 'chromium'))
      throw new Error(
        'could not install chromium: install it yourself (apt-get install chromium) or set AISLE_CHROMIUM_BIN',
      );
  }
}

function newer(a, b) {
  return existsSync(a) && existsSync(b) && statSync(a).mtimeMs >= statSync(b).mtimeMs;
}

function ensureDependencies() {
  // better-sqlite3 builds from source; node-gyp must find Node's headers without downloading them.
  if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node.h'))
    process.env.npm_config_nodedir = '/usr';
  const lock = join(root, 'pnpm-lock.yaml');
  const marker = join(root, 'node_modules', '.modules.yaml');
  if (newer(marker, lock) && process.env.AISLE_FORCE_INSTALL !== '1') return;
  const args = ['install', ...(existsSync(lock) && process.env.CI ? ['--frozen-lockfile'] : [])];
  if (!run('pnpm', args)) throw new Error('pnpm install failed');
}

function build() {
  if (!run('pnpm', ['run', '--silent', 'build'])) throw new Error('build failed');
}

export function bootstrap({ withBuild = true, forTests = false, withChromium = false } = {}) {
  ensureNode();
  ensurePnpm();
  ensureNatsServer();
  if (forTests) ensureStrictReflectionClient();
  if (withChromium || forTests) ensureChromium();
  ensureDependencies();
  if (withBuild) build();
  process.env.AISLE_NATS_SERVER_BIN ??= findNatsServer() ?? '';
  if (withChromium) process.env.AISLE_CHROMIUM_BIN ??= findChromium() ?? '';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    bootstrap({ withChromium: true });
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
