import { PermissionDeniedError, UnauthenticatedError } from '@aisle/contracts';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Who may call a service's data APIs, for what: each caller is known by a bearer token (its SHA-256 in
 * the file, never the token itself) or by its mTLS certificate identities, and may use the listed RPCs
 * for the listed tenants (`*` for all). A call with neither credential is UNAUTHENTICATED; a known
 * caller outside its grant gets PERMISSION_DENIED. Health and reflection stay open.
 */
export interface Caller {
  readonly name: string;
  readonly tenants: ReadonlySet<string>;
  readonly methods: ReadonlySet<string>;
}

interface CallerEntry extends Caller {
  readonly tokenSha256: Buffer | undefined;
  readonly identities: readonly string[];
}

export class CallerPolicy {
  /** The file it was read from (AISLE_GRPC_CALLERS_FILE), which `followCallersFile` re-reads on change. */
  path: string | undefined;

  constructor(private entries: readonly CallerEntry[]) {}

  /** Takes another policy's callers (the file changed): calls from now on are judged by them. */
  replaceWith(other: CallerPolicy): void {
    this.entries = other.entries;
  }

  /** The caller behind a call's `authorization: Bearer <token>` metadata or its certificate identities. */
  identify(authorization: string | undefined, identities: readonly string[]): Caller {
    const m = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m?.[1]) {
      const digest = createHash('sha256').update(m[1]).digest();
      for (const e of this.entries)
        if (e.tokenSha256 && e.tokenSha256.length === digest.length && timingSafeEqual(e.tokenSha256, digest)) return e;
      throw new UnauthenticatedError('unknown bearer token');
    }
    for (const e of this.entries) if (e.identities.some((id) => identities.includes(id))) return e;
    throw new UnauthenticatedError(
      'no caller identity: send `authorization: Bearer <token>` or a client certificate this service knows',
    );
  }
}

/** The caller may call `method` (an RPC name such as Recommend); PERMISSION_DENIED otherwise. */
export function authorizeMethod(caller: Caller, method: string): void {
  if (!caller.methods.has('*') && !caller.methods.has(method))
    throw new PermissionDeniedError(`caller ${caller.name} may not call ${method}`);
}

/** The caller may act for `tenant`; PERMISSION_DENIED otherwise. */
export function authorizeTenant(caller: Caller, tenant: string): void {
  if (!caller.tenants.has('*') && !caller.tenants.has(tenant))
    throw new PermissionDeniedError(`caller ${caller.name} may not act for tenant '${tenant}'`);
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x);

/**
 * Parses the callers file (AISLE_GRPC_CALLERS_FILE):
 * `{"callers": [{"name": "shop-a-backend", "token_sha256": "<hex>", "tenants": ["shop-a"],
 * "methods": ["Recommend", "Search"]}, {"name": "ranking", "identities": ["ranking"], "tenants": ["*"],
 * "methods": ["*"]}]}`. Every problem is named.
 */
export function parseCallers(text: string): CallerPolicy {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const list = (parsed as { callers?: unknown } | null)?.callers;
  if (!Array.isArray(list) || list.length === 0) throw new Error('needs a non-empty "callers" list');
  const names = new Set<string>();
  const entries = list.map((raw: unknown, i): CallerEntry => {
    const c = (raw ?? {}) as Record<string, unknown>;
    const where = `callers[${i}]`;
    if (typeof c['name'] !== 'string' || !c['name']) throw new Error(`${where}.name must be a non-empty string`);
    if (names.has(c['name'])) throw new Error(`${where}.name '${c['name']}' appears twice`);
    names.add(c['name']);
    const token = c['token_sha256'];
    if (token !== undefined && (typeof token !== 'string' || !/^[0-9a-f]{64}$/i.test(token)))
      throw new Error(`${where}.token_sha256 must be 64 hex digits (sha256 of the token)`);
    const identities = c['identities'] ?? [];
    if (!isStrings(identities)) throw new Error(`${where}.identities must be a list of certificate identities`);
    if (token === undefined && identities.length === 0)
      throw new Error(`${where} needs token_sha256 or identities (how the caller is recognized)`);
    for (const key of ['tenants', 'methods'] as const)
      if (!isStrings(c[key]) || c[key].length === 0) throw new Error(`${where}.${key} must be a non-empty list`);
    const methods = c['methods'] as string[];
    const bad = methods.find((m) => m !== '*' && !/^[A-Z][A-Za-z0-9]*$/.test(m));
    if (bad) throw new Error(`${where}.methods: '${bad}' is not an RPC name (like Recommend) or *`);
    return {
      name: c['name'],
      tokenSha256: typeof token === 'string' ? Buffer.from(token, 'hex') : undefined,
      identities,
      tenants: new Set(c['tenants'] as string[]),
      methods: new Set(methods),
    };
  });
  return new CallerPolicy(entries);
}

export function readCallersFile(path: string): CallerPolicy {
  const policy = parseCallers(readFileSync(path, 'utf8'));
  policy.path = path;
  return policy;
}

/**
 * Re-reads the callers file when it changes (polled: a Kubernetes Secret volume swaps a symlink, which
 * file events miss), so that a platform team adds or revokes a caller without a restart. A file that no
 * longer parses is reported and the callers in force stay. Returns the stop function.
 */
export function followCallersFile(
  policy: CallerPolicy,
  opts: {
    intervalMs: number;
    onReload: (outcome: { ok: true } | { ok: false; error: string }) => void;
  },
): () => void {
  const path = policy.path;
  if (!path) return () => undefined;
  let last = safeRead(path);
  const timer = setInterval(() => {
    const text = safeRead(path);
    if (text === undefined || text === last) return;
    last = text;
    try {
      policy.replaceWith(parseCallers(text));
      opts.onReload({ ok: true });
    } catch (err) {
      opts.onReload({ ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function safeRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
