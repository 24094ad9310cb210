import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The repository root, from either src/ or dist/ of this package. */
export const repoRoot = resolve(__dirname, '..', '..', '..');

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly metricsPort: number | undefined;
  /** Parsed JSON log lines so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM and wait for a graceful exit. */
  stop(): Promise<number | string>;
}

/**
 * Starts `node services/<name>/dist/main.js` (built by `pnpm build`) and waits for its `ready` log line,
 * which carries the bound gRPC and metrics ports.
 */
export function startServiceProcess(
  name: string,
  env: Record<string, string>,
  opts: { timeoutMs?: number; echo?: boolean; detached?: boolean; nodeArgs?: string[] } = {},
): Promise<ServiceProcess> {
  const entry = join(repoRoot, 'services', name, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`pnpm build\` first`);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), entry], {
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'] ?? '',
      AISLE_GRPC_PORT: '0',
      AISLE_METRICS_PORT: '0',
      AISLE_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a terminal's Ctrl-C then reaches only the parent, which stops children in order.
    detached: opts.detached ?? false,
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  const exited = new Promise<number | string>((res) => child.once('exit', (code, signal) => res(code ?? signal ?? -1)));
  return new Promise((resolvePromise, reject) => {
    let buffer = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${name} not ready within ${opts.timeoutMs ?? 30_000} ms; stderr:\n${stderr}\nlogs:\n${JSON.stringify(logs.slice(-20), null, 1)}`,
        ),
      );
    }, opts.timeoutMs ?? 30_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      stderr += c;
      if (opts.echo) process.stderr.write(c);
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (opts.echo) process.stderr.write(`[${name}] ${line}\n`);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logs.push(rec);
        if (!ready && rec['msg'] === 'ready') {
          ready = true;
          clearTimeout(timer);
          resolvePromise({
            name,
            child,
            grpcPort: Number(rec['grpc_port']),
            metricsPort: rec['metrics_port'] === undefined ? undefined : Number(rec['metrics_port']),
            logs,
            exited,
            kill: (signal = 'SIGKILL') => child.kill(signal),
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }
    });
    void exited.then((code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(
          new Error(
            `${name} exited with ${code} before ready; stderr:\n${stderr}\nlogs:\n${JSON.stringify(logs.slice(-20), null, 1)}`,
          ),
        );
      }
    });
  });
}

/** Runs `node services/<name>/dist/main.js` to completion (jobs such as the trainer) and returns its logs. */
export function runJobProcess(
  name: string,
  env: Record<string, string>,
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number | string; logs: Array<Record<string, unknown>>; stderr: string }> {
  const entry = join(repoRoot, 'services', name, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`pnpm build\` first`);
  const child = spawn(process.execPath, [entry], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', AISLE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffer = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (c: string) => {
    buffer += c;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => (stderr += c));
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? signal ?? -1, logs, stderr });
    });
  });
}
