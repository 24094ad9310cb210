import { Counter, grpc, isGrpcError, ModelVersionNotFoundError, type Logger, type Registry } from '@aisle/runtime';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BlockList, isIP, type AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import {
  authenticate,
  mayOperate,
  mayRead,
  maySeeTenantOf,
  openCaller,
  resolveCaller,
  type AccessFile,
  type Caller,
  type SessionSigner,
} from './access';
import type {
  ActivateRequest,
  DeadLetterDetail,
  ExperimentActionRequest,
  ExperimentActionResult,
  ExperimentsView,
  ExperimentView,
  ModelsView,
  ReplayRequest,
  ReplayResult,
  SearchView,
  SessionInfo,
  ShopperView,
} from './api';
import { DeadLetterNotFoundError, NotReplayableError } from './console.nats';
import type { DeadLetterIndex } from './dead-letters';
import { ExperimentNotFoundError } from './experiments';
import { forTenant, type OverviewSampler } from './overview';

/** An HTTP status with a message for the caller; anything else becomes a logged 500. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface ConsoleHttpDeps {
  host: string;
  port: number;
  webRoot: string;
  auth: 'none' | 'login' | 'proxy';
  /** The declared tenants now (AISLE_TENANTS and the tenant bucket). */
  tenants: () => readonly string[];
  access: AccessFile | undefined;
  signer: SessionSigner | undefined;
  secureCookies: boolean;
  proxyUserHeader: string;
  proxyGroupsHeader: string;
  trustedProxies: readonly string[];
  logger: Logger;
  registry: Registry;
  sampler: OverviewSampler;
  deadLetters: DeadLetterIndex;
  readDeadLetter(seq: number): Promise<DeadLetterDetail>;
  replay(req: ReplayRequest): Promise<ReplayResult>;
  shopper(tenant: string, userId: string): Promise<ShopperView>;
  search(tenant: string, query: string, userId: string, limit: number): Promise<SearchView>;
  models(tenant: string): Promise<ModelsView>;
  activate(req: ActivateRequest): Promise<void>;
  experiments(tenant: string): Promise<ExperimentsView>;
  experiment(tenant: string, id: string): Promise<ExperimentView>;
  stopExperiment(req: ExperimentActionRequest): Promise<ExperimentActionResult>;
  promoteExperiment(req: ExperimentActionRequest): Promise<ExperimentActionResult>;
}

export interface RunningHttp {
  readonly port: number;
  close(): Promise<void>;
}

const COOKIE = 'aisle_console';
const MAX_BODY = 256 * 1024;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

function trustedProxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
    if (bits !== undefined) list.addSubnet(addr ?? '', Number(bits), family);
    else list.addAddress(addr ?? '', family);
  }
  return list;
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? ''))
    throw new HttpError(415, 'send application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

function stringField(body: unknown, field: string, opts: { max?: number; optional?: boolean } = {}): string {
  const v = (body as Record<string, unknown> | null)?.[field];
  if ((v === undefined || v === '') && opts.optional) return '';
  if (typeof v !== 'string' || v === '') throw new HttpError(400, `${field}: required`, field);
  if (v.length > (opts.max ?? 256)) throw new HttpError(400, `${field}: longer than ${opts.max ?? 256}`, field);
  return v;
}

function param(url: URL, name: string, opts: { max?: number; optional?: boolean } = {}): string {
  const v = url.searchParams.get(name) ?? '';
  if (!v && !opts.optional) throw new HttpError(400, `${name}: required`, name);
  if (v.length > (opts.max ?? 256)) throw new HttpError(400, `${name}: longer than ${opts.max ?? 256}`, name);
  return v;
}

function intParam(url: URL, name: string, def: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new HttpError(400, `${name}: must be an integer from ${min} to ${max}`, name);
  return n;
}

/** Errors with a meaning for the caller; others are logged and answered 500 without detail. */
function asHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (
    err instanceof DeadLetterNotFoundError ||
    err instanceof ModelVersionNotFoundError ||
    err instanceof ExperimentNotFoundError
  )
    return new HttpError(404, err.message);
  if (err instanceof NotReplayableError) return new HttpError(400, err.message);
  if (isGrpcError(err)) {
    const detail = err.details || err.message;
    if (err.code === grpc.status.INVALID_ARGUMENT) return new HttpError(400, detail);
    if (err.code === grpc.status.NOT_FOUND) return new HttpError(404, detail);
    if (err.code === grpc.status.FAILED_PRECONDITION) return new HttpError(409, detail);
    if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED)
      return new HttpError(503, `a service did not answer: ${detail}`);
  }
  return undefined;
}

/** Failed logins per client address, forgotten after a quiet window: slows down password guessing. */
class LoginThrottle {
  private readonly failures = new Map<string, { count: number; until: number }>();
  constructor(
    private readonly limit = 10,
    private readonly windowMs = 5 * 60_000,
  ) {}
  blocked(addr: string): boolean {
    const f = this.failures.get(addr);
    return f !== undefined && f.count >= this.limit && f.until > Date.now();
  }
  fail(addr: string): void {
    const f = this.failures.get(addr);
    const now = Date.now();
    this.failures.set(addr, {
      count: f && f.until > now ? f.count + 1 : 1,
      until: now + this.windowMs,
    });
    if (this.failures.size > 10_000) this.failures.clear();
  }
  succeed(addr: string): void {
    this.failures.delete(addr);
  }
}

/** The console's web server: the browser app, its JSON API, and the live overview as server-sent events. */
export async function startConsoleHttp(deps: ConsoleHttpDeps): Promise<RunningHttp> {
  const trusted = trustedProxyList(deps.trustedProxies);
  const throttle = new LoginThrottle();
  const requests = new Counter({
    name: 'aisle_console_http_requests_total',
    help: 'Console HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [deps.registry],
  });
  const streams = new Set<ServerResponse>();
  const webRoot = normalize(deps.webRoot);
  const indexHtml = existsSync(join(webRoot, 'index.html')) ? readFileSync(join(webRoot, 'index.html')) : undefined;

  const callerOf = (req: IncomingMessage): Caller | null => {
    switch (deps.auth) {
      case 'none':
        return openCaller(deps.tenants());
      case 'login': {
        const user = deps.signer?.verify(cookieValue(req, COOKIE));
        return user && deps.access ? resolveCaller(deps.access, deps.tenants(), user, []) : null;
      }
      case 'proxy': {
        const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
        const family = isIP(remote) === 6 ? 'ipv6' : 'ipv4';
        if (!remote || !trusted.check(remote, family)) return null;
        const user = req.headers[deps.proxyUserHeader.toLowerCase()];
        if (typeof user !== 'string' || !user || !deps.access) return null;
        const groupsHeader = req.headers[deps.proxyGroupsHeader.toLowerCase()];
        const groups = (typeof groupsHeader === 'string' ? groupsHeader : '')
          .split(',')
          .map((g) => g.trim())
          .filter(Boolean);
        return resolveCaller(deps.access, deps.tenants(), user, groups);
      }
    }
  };

  const tenantFor = (caller: Caller, tenant: string, operate = false): string => {
    if (!deps.tenants().includes(tenant)) throw new HttpError(404, `tenant ${tenant} is not declared`, 'tenant');
    if (!(operate ? mayOperate(caller, tenant) : mayRead(caller, tenant)))
      throw new HttpError(403, operate ? `you may not change tenant ${tenant}` : `you may not see tenant ${tenant}`);
    return tenant;
  };

  const sameOrigin = (req: IncomingMessage) => {
    const origin = req.headers.origin;
    if (!origin) return true; // non-browser clients; the JSON content type already rules out plain form posts
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  };

  const serveStatic = (url: URL, res: ServerResponse): void => {
    const rel = decodeURIComponent(url.pathname);
    const file = normalize(join(webRoot, rel));
    if (file.startsWith(webRoot + '/') && existsSync(file) && /\.(js|css|svg|png|map)$/.test(file)) {
      res.writeHead(200, {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        'Cache-Control': 'no-cache',
        ...SECURITY_HEADERS,
      });
      res.end(readFileSync(file));
      return;
    }
    if (!indexHtml) {
      res.writeHead(503, { 'Content-Type': 'text/plain' });
      res.end('the console web app is not built: run `pnpm build`');
      return;
    }
    // Every page path serves the app, which routes in the browser.
    res.writeHead(200, { 'Content-Type': TYPES['.html'] as string, 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
    res.end(indexHtml);
  };

  const overviewStream = (req: IncomingMessage, res: ServerResponse, tenant: string): void => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      ...SECURITY_HEADERS,
    });
    const push = (s: Parameters<typeof forTenant>[0]) =>
      res.write(`event: overview\ndata: ${JSON.stringify(forTenant(s, tenant))}\n\n`);
    const latest = deps.sampler.latest();
    if (latest) push(latest);
    const unsubscribe = deps.sampler.subscribe(push);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    streams.add(res);
    req.on('close', () => {
      unsubscribe();
      clearInterval(keepAlive);
      streams.delete(res);
    });
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL, route: { name: string }): Promise<void> => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST' && !sameOrigin(req)) throw new HttpError(403, 'cross-origin request refused');

    if (path === '/api/login' && method === 'POST') {
      route.name = 'login';
      if (deps.auth !== 'login') throw new HttpError(404, 'login is not enabled');
      const addr = req.socket.remoteAddress ?? '';
      if (throttle.blocked(addr)) throw new HttpError(429, 'too many failed logins; try again in a few minutes');
      const body = await readJson(req);
      const user = stringField(body, 'user', { max: 128 });
      const password = stringField(body, 'password', { max: 1024 });
      if (!deps.access || !deps.signer || !authenticate(deps.access, user, password)) {
        throttle.fail(addr);
        throw new HttpError(401, 'wrong user name or password');
      }
      throttle.succeed(addr);
      const cookie = `${COOKIE}=${deps.signer.issue(user)}; HttpOnly; SameSite=Strict; Path=/${deps.secureCookies ? '; Secure' : ''}`;
      return send(res, 200, { ok: true }, { 'Set-Cookie': cookie });
    }
    if (path === '/api/logout' && method === 'POST') {
      route.name = 'logout';
      return send(res, 200, { ok: true }, { 'Set-Cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` });
    }

    const caller = callerOf(req);
    if (path === '/api/session') {
      route.name = 'session';
      if (!caller) return send(res, 401, { error: 'login required', auth: deps.auth });
      const info: SessionInfo = { auth: deps.auth, user: caller.user, role: caller.role, tenants: caller.tenants };
      return send(res, 200, info);
    }
    if (!caller) throw new HttpError(401, 'login required');

    if (path === '/api/overview' || path === '/api/overview/stream') {
      route.name = path === '/api/overview' ? 'overview' : 'overview_stream';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      if (path === '/api/overview/stream') return overviewStream(req, res, tenant);
      const latest = deps.sampler.latest() ?? (await deps.sampler.sample());
      return send(res, 200, forTenant(latest, tenant));
    }
    if (path === '/api/dead-letters' && method === 'GET') {
      route.name = 'dead_letters';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      const reason = param(url, 'reason', { optional: true, max: 200 });
      const before = url.searchParams.get('before');
      return send(
        res,
        200,
        deps.deadLetters.page(caller, tenant, {
          ...(reason ? { reasonKind: reason } : {}),
          limit: intParam(url, 'limit', 100, 1, 1000),
          ...(before ? { beforeSeq: intParam(url, 'before', 0, 1, Number.MAX_SAFE_INTEGER) } : {}),
        }),
      );
    }
    const one = /^\/api\/dead-letters\/(\d+)$/.exec(path);
    if (one && method === 'GET') {
      route.name = 'dead_letter';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      const detail = await deps.readDeadLetter(Number(one[1]));
      // The same answer for another tenant's letter as for a missing one: existence is not disclosed.
      if ((detail.tenant !== null && detail.tenant !== tenant) || !maySeeTenantOf(caller, detail.tenant))
        throw new HttpError(404, `no dead letter ${one[1]}`);
      return send(res, 200, detail);
    }
    if (path === '/api/dead-letters/replay' && method === 'POST') {
      route.name = 'replay';
      const body = (await readJson(req)) as Partial<ReplayRequest> | null;
      const tenant = tenantFor(caller, stringField(body, 'tenant', { max: 128 }), true);
      const seqs = body?.seqs;
      if (
        !Array.isArray(seqs) ||
        seqs.length === 0 ||
        seqs.length > 500 ||
        !seqs.every((s) => Number.isInteger(s) && s > 0)
      )
        throw new HttpError(400, 'seqs: 1 to 500 dead-letter sequence numbers', 'seqs');
      const edits = body?.edits ?? {};
      if (typeof edits !== 'object' || Object.values(edits).some((e) => typeof e !== 'string'))
        throw new HttpError(400, 'edits: an object of sequence number -> JSON text', 'edits');
      for (const seq of seqs) {
        const d = await deps.readDeadLetter(seq);
        if ((d.tenant !== null && d.tenant !== tenant) || !maySeeTenantOf(caller, d.tenant))
          throw new HttpError(404, `no dead letter ${seq}`);
      }
      const result = await deps.replay({ tenant, seqs, edits });
      deps.logger.info('dead letters replayed', { user: caller.user, tenant, seqs, edited: Object.keys(edits) });
      return send(res, 200, result);
    }
    if (path === '/api/shopper' && method === 'GET') {
      route.name = 'shopper';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      return send(res, 200, await deps.shopper(tenant, param(url, 'user', { max: 128 })));
    }
    if (path === '/api/search' && method === 'GET') {
      route.name = 'search';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      return send(
        res,
        200,
        await deps.search(
          tenant,
          param(url, 'q', { max: 512 }),
          param(url, 'user', { optional: true, max: 128 }),
          intParam(url, 'limit', 20, 1, 100),
        ),
      );
    }
    if (path === '/api/models' && method === 'GET') {
      route.name = 'models';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      return send(res, 200, await deps.models(tenant));
    }
    if (path === '/api/models/activate' && method === 'POST') {
      route.name = 'activate';
      const body = await readJson(req);
      const tenant = tenantFor(caller, stringField(body, 'tenant', { max: 128 }), true);
      const name = stringField(body, 'name', { max: 64 });
      const version = stringField(body, 'version', { max: 128 });
      await deps.activate({ tenant, name, version });
      deps.logger.info('model version activated', { user: caller.user, tenant, model: name, version });
      return send(res, 200, { ok: true });
    }
    if (path === '/api/experiments' && method === 'GET') {
      route.name = 'experiments';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      return send(res, 200, await deps.experiments(tenant));
    }
    const experiment = /^\/api\/experiments\/([a-z0-9_-]{1,64})$/.exec(path);
    if (experiment && method === 'GET') {
      route.name = 'experiment';
      const tenant = tenantFor(caller, param(url, 'tenant', { max: 128 }));
      return send(res, 200, await deps.experiment(tenant, experiment[1] as string));
    }
    const action = /^\/api\/experiments\/(stop|promote)$/.exec(path)?.[1];
    if (action && method === 'POST') {
      route.name = `experiment_${action}`;
      const body = await readJson(req);
      const tenant = tenantFor(caller, stringField(body, 'tenant', { max: 128 }), true);
      const id = stringField(body, 'id', { max: 64 });
      const force = (body as { force?: unknown } | null)?.force ?? false;
      if (typeof force !== 'boolean') throw new HttpError(400, 'force: must be true or false', 'force');
      const request: ExperimentActionRequest = {
        tenant,
        id,
        reason: stringField(body, 'reason', { max: 1000, optional: true }),
        arm: stringField(body, 'arm', { max: 32, optional: true }),
        force,
      };
      const result = action === 'stop' ? await deps.stopExperiment(request) : await deps.promoteExperiment(request);
      deps.logger.info(`experiment ${action === 'stop' ? 'stopped' : 'promoted'}`, {
        user: caller.user,
        tenant,
        experiment: id,
        ...(action === 'promote' ? { arm: request.arm, force, activated: result.activated } : {}),
      });
      return send(res, 200, result);
    }
    route.name = 'unknown';
    throw new HttpError(404, `no route ${method} ${path}`);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://console');
    if (!url.pathname.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
      serveStatic(url, res);
      requests.inc({ route: 'static', status: 200 });
      return;
    }
    const route = { name: 'api' };
    api(req, res, url, route)
      .catch((err: unknown) => {
        if (res.headersSent) return;
        const known = asHttpError(err);
        if (known)
          return send(res, known.status, { error: known.message, ...(known.field ? { field: known.field } : {}) });
        deps.logger.error('console request failed', { route: route.name, err });
        send(res, 500, { error: 'internal error' });
      })
      .finally(() => requests.inc({ route: route.name, status: res.statusCode }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
