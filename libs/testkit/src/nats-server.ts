import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The server's process id (changes with restart()). */
  readonly pid: number | undefined;
  /** Stops the server (keeps its JetStream data for restart()). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data (also after a kill). */
  restart(): Promise<void>;
  /** Sends a signal to the server process (SIGSTOP and SIGCONT to freeze it, SIGKILL to crash it). */
  signal(signal: NodeJS.Signals): void;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

export function natsServerBinary(): string {
  const candidates = [
    process.env['AISLE_NATS_SERVER_BIN'],
    '/usr/sbin/nats-server',
    '/usr/bin/nats-server',
    '/usr/local/bin/nats-server',
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  if (found) return found;
  throw new Error('nats-server not found: run `npm test` (it installs it) or set AISLE_NATS_SERVER_BIN');
}

interface LaunchOptions {
  extraArgs: readonly string[];
  detached: boolean;
  env: Readonly<Record<string, string>> | undefined;
  onLog: ((text: string) => void) | undefined;
}

function launch(
  bin: string,
  port: number,
  storeDir: string,
  o: LaunchOptions,
): Promise<{ child: ChildProcess; port: number }> {
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...o.extraArgs];
  const child = spawn(bin, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: o.detached,
    ...(o.env ? { env: { ...process.env, ...o.env } } : {}),
  });
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server did not start within 10 s:\n${log}`));
    }, 10_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      log += chunk;
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m && /Server is ready/.test(log)) {
        clearTimeout(timer);
        child.stderr?.removeAllListeners('data');
        const onLog = o.onLog;
        if (onLog) child.stderr?.on('data', (text: string) => onLog(text));
        else child.stderr?.resume();
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

export interface NatsServerOptions {
  args?: readonly string[];
  detached?: boolean;
  /** Added to the server's environment (a config file may read variables from it). */
  env?: Readonly<Record<string, string>>;
  /** Receives the server's log after start-up (errors such as permission violations). */
  onLog?: (text: string) => void;
}

/** A real nats-server with JetStream on a random loopback port and a temporary store directory. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = natsServerBinary();
  const storeDir = mkdtempSync(join(tmpdir(), 'aisle-nats-'));
  const o: LaunchOptions = {
    extraArgs: opts.args ?? [],
    detached: opts.detached ?? false,
    env: opts.env,
    onLog: opts.onLog,
  };
  let { child, port } = await launch(bin, -1, storeDir, o);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get pid() {
      return child.pid;
    },
    stop: () => stopChild(child),
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    async restart() {
      await stopChild(child);
      ({ child, port } = await launch(bin, port, storeDir, o));
    },
    async dispose() {
      await stopChild(child);
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
