/**
 * Issue #17: the Dockerfile is checked as far as a machine without a Docker engine allows. Its stages
 * are parsed; the steps of the stages that shape an image (`build`, `build-gpu`) run as written against a
 * `pnpm deploy` output folder of this workspace; the runtime stages' COPY sources must then exist and
 * their command must start the service from the copied folder. The toolchain and workspace stages
 * (apt-get, the registry, `pnpm install && pnpm build`) are what `npm test` itself ran before this test.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AISLE_WORKLOADS } from './render';

jest.setTimeout(300_000);

const root = join(__dirname, '..', '..');
/** Every workload has an image: the services, the console and the trainer. */
const SERVICES = AISLE_WORKLOADS;

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name: string;
  instructions: Instruction[];
}

/** Dockerfile -> global ARG defaults and stages (continuation lines joined, comments dropped). */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const l of logical.filter(Boolean)) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(l) ?? [];
    const OP = op.toUpperCase();
    if (OP === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest);
      stages.push({ base: m?.[1] ?? '', name: m?.[2] ?? `#${stages.length}`, instructions: [] });
    } else if (stages.length === 0) {
      if (OP === 'ARG') {
        const [k = '', v = ''] = rest.split('=');
        args[k] = v;
      }
    } else stages[stages.length - 1]!.instructions.push({ op: OP, args: rest });
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const stage = (name: string): Stage => {
  const s = dockerfile.stages.find((x) => x.name === name);
  if (!s) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};
/** A stage's instructions after those of the stages it is built FROM. */
const chain = (name: string): Stage[] => {
  const s = stage(name);
  return dockerfile.stages.some((x) => x.name === s.base) ? [...chain(s.base), s] : [s];
};

/** Environment a stage's RUN steps see: its ARGs (build args or defaults) and ENVs. */
function stageEnv(s: Stage, buildArgs: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of s.instructions) {
    if (i.op === 'ARG') {
      const [k = '', v] = i.args.split('=');
      env[k] = buildArgs[k] ?? v ?? dockerfile.args[k] ?? '';
    }
    if (i.op === 'ENV')
      for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return env;
}

class ImageFs {
  readonly dir = mkdtempSync(join(tmpdir(), 'aisle-image-'));
  /** Image paths the build stages write, mapped into the temporary folder. */
  readonly roots = ['/out', '/rootfs'];
  map(path: string): string | undefined {
    const r = this.roots.find((x) => path === x || path.startsWith(`${x}/`));
    return r ? join(this.dir, path) : undefined;
  }
  /** A RUN step as this machine runs it: cache mounts dropped, image paths mapped. */
  command(run: string): string {
    let cmd = run.replace(/^(--\S+\s+)+/, '');
    for (const r of this.roots)
      cmd = cmd.replace(new RegExp(`(?<![\\w./-])${r}(?=[/\\s"']|$)`, 'g'), join(this.dir, r));
    return cmd;
  }
  run(s: Stage, buildArgs: Record<string, string>, extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
    // Nothing of this process's environment but PATH and HOME: jest's NODE_PATH would let a module the
    // image lacks resolve from the workspace. npm_config_nodedir is the image's; here Debian's headers.
    const env = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      ...stageEnv(s, buildArgs),
      npm_config_nodedir: '/usr',
      ...extraEnv,
    };
    let last: SpawnSyncReturns<string> | undefined;
    for (const i of s.instructions.filter((x) => x.op === 'RUN')) {
      last = spawnSync('sh', ['-c', this.command(i.args)], { cwd: root, env, encoding: 'utf8', timeout: 180_000 });
      if (last.status !== 0) return last;
    }
    if (!last) throw new Error(`stage ${s.name} has no RUN step`);
    return last;
  }
  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Paths a COPY --from may take from a base image rather than from a build step. */
const FROM_BASE_IMAGE = new Set(['/usr/local/bin/node']);

/** Checks a runtime stage against the built folder; returns the exit of its command started there. */
function startRuntime(s: Stage, fs: ImageFs): { problems: string[]; exit: SpawnSyncReturns<string> | undefined } {
  const problems: string[] = [];
  let appDir: string | undefined;
  let workdir = '/';
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const i of s.instructions) {
    if (i.op === 'WORKDIR') workdir = i.args;
    if (i.op === 'COPY') {
      const m = /--from=(\S+).*?\s(\S+)\s+(\S+)$/.exec(i.args);
      if (!m) continue;
      const [, , src = '', dst = ''] = m;
      const local = fs.map(src);
      if (local === undefined) {
        if (!FROM_BASE_IMAGE.has(src)) problems.push(`COPY ${src}: no build step writes it`);
      } else if (!existsSync(local)) problems.push(`COPY ${src}: missing after the build steps`);
      else if (dst === workdir || dst === '/app') appDir = local;
    }
    if (i.op === 'ENTRYPOINT') entrypoint = JSON.parse(i.args) as string[];
    if (i.op === 'CMD') cmd = JSON.parse(i.args) as string[];
  }
  if (!appDir) return { problems: [...problems, `stage ${s.name}: nothing copied to ${workdir}`], exit: undefined };
  // distroless/nodejs's entrypoint is node; our own stages name it.
  const [script = '', ...rest] = entrypoint.length > 0 ? [...entrypoint.slice(1), ...cmd] : cmd;
  if (!existsSync(join(appDir, script))) problems.push(`CMD ${script}: not in the image's ${workdir}`);
  // Every module the service imports must resolve from the copied folder alone: an invalid setting makes
  // it exit 2 right after loading them (a missing module would exit 1 first).
  const exit = spawnSync(process.execPath, [script, ...rest], {
    cwd: appDir,
    env: { PATH: process.env['PATH'], ...stageEnv(s, {}), AISLE_LOG_LEVEL: 'not-a-level' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { problems, exit };
}

test('Dockerfile: no HEALTHCHECK, pinned base images, every runtime stage non-root', () => {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  expect(text).not.toMatch(/^HEALTHCHECK/m);
  for (const s of dockerfile.stages) expect(s.base).not.toMatch(/:latest$/);
  for (const name of ['runtime', 'runtime-gpu']) {
    const user = stage(name).instructions.find((i) => i.op === 'USER')?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
  }
});

test('the Dockerfile parses into the stages the README and the gpu component use', () => {
  expect(dockerfile.stages.map((s) => s.name)).toEqual(
    expect.arrayContaining(['toolchain', 'workspace', 'build', 'build-gpu', 'runtime', 'runtime-gpu']),
  );
  // SERVICE is declared only after the shared workspace stage: the seven images share its layers.
  for (const name of ['toolchain', 'workspace'])
    expect(stage(name).instructions.filter((i) => i.op === 'ARG' && i.args.startsWith('SERVICE'))).toEqual([]);
  expect(stage('build').instructions[0]).toEqual({ op: 'ARG', args: 'SERVICE' });
  expect(JSON.stringify(dockerfile)).not.toMatch(/--offline\b/);
  // The distroless runtime carries the same Node major as the toolchain that compiled better-sqlite3.
  expect(dockerfile.args['NODE_VERSION']?.split('.')[0]).toBe(dockerfile.args['NODE_MAJOR']);
  expect(chain('runtime-gpu').map((s) => s.name)).toEqual(['runtime-gpu']);
});

describe.each(SERVICES)('image of %s', (service) => {
  const fs = new ImageFs();
  let build: SpawnSyncReturns<string>;
  beforeAll(() => {
    build = fs.run(stage('build'), { SERVICE: service });
  });
  afterAll(() => fs.dispose());

  test('the build stage deploys the service with production dependencies only', () => {
    expect(build.status === 0 ? 'built' : build.stderr).toBe('built');
    const pnpmDir = join(fs.dir, 'out', 'node_modules', '.pnpm');
    expect(existsSync(pnpmDir)).toBe(true);
    const installed = spawnSync('ls', [pnpmDir], { encoding: 'utf8' }).stdout;
    // No optional tfjs-node and no development tools in a serving or training image.
    expect(installed).not.toMatch(/tfjs-node|typescript@|jest@|@swc/);
  });

  test('the runtime stage finds what it copies and its command loads every module of the service', () => {
    const { problems, exit } = startRuntime(stage('runtime'), fs);
    expect(problems).toEqual([]);
    expect(exit?.stderr).toMatch(/AISLE_LOG_LEVEL must be one of/);
    expect(exit?.status).toBe(2);
  });

  if (service === 'console')
    test('the console image carries its built web app (script, stylesheet, page)', () => {
      for (const f of ['index.html', 'app.js', 'app.css'])
        expect([f, existsSync(join(fs.dir, 'out', 'dist', 'web', f))]).toEqual([f, true]);
    });

  if (service === 'embedding-inference') {
    test('the GPU stage finds onnxruntime-node in the deployed folder and gets as far as its download', () => {
      // The CUDA provider download is the one thing this machine cannot do: a closed proxy port ends it.
      const r = fs.run(stage('build-gpu'), {}, { GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9' });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(out).not.toMatch(/Cannot find module|MODULE_NOT_FOUND|No such file/);
      expect(out).toMatch(/ECONNREFUSED 127\.0\.0\.1:9/);
      const { problems, exit } = startRuntime(stage('runtime-gpu'), fs);
      expect(problems).toEqual([]);
      expect(exit?.status).toBe(2);
    });
  }
});
