import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Role } from './api';

/**
 * Who may see what. Users (for login) and grants live in one JSON access file:
 *   { "users":  [{ "name": "alice", "passwordHash": "scrypt$<salt>$<hash>" }],
 *     "grants": [{ "subject": "user:alice" | "group:platform" | "*", "tenants": ["shop-a"] | ["*"],
 *                  "role": "viewer" | "operator" }] }
 * A caller's tenants are the union of its grants' tenants (within the declared ones); its role is the
 * strongest granted. A caller with no grant sees nothing.
 */

export class AccessFileError extends Error {
  override readonly name = 'AccessFileError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface AccessFile {
  users: Array<{ name: string; passwordHash: string }>;
  grants: Array<{ subject: string; tenants: string[]; role: Role }>;
}

export interface Caller {
  user: string | null;
  role: Role;
  /** Allowed tenants, in the declared order. */
  tenants: string[];
  /** True when every declared tenant is allowed: such a caller also sees input whose tenant is unknown. */
  allTenants: boolean;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Validates a parsed access file, naming the first problem. */
export function parseAccessFile(raw: unknown): AccessFile {
  const fail = (m: string): never => {
    throw new AccessFileError(`access file: ${m}`);
  };
  if (raw === null || typeof raw !== 'object') return fail('must be a JSON object');
  const { users = [], grants = [] } = raw as Record<string, unknown>;
  if (!Array.isArray(users)) return fail('users must be a list');
  if (!Array.isArray(grants)) return fail('grants must be a list');
  const out: AccessFile = { users: [], grants: [] };
  users.forEach((u: unknown, i) => {
    const { name, passwordHash } = (u ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !name) fail(`users[${i}].name is required`);
    if (typeof passwordHash !== 'string' || !passwordHash.startsWith('scrypt$'))
      fail(`users[${i}].passwordHash must be a scrypt hash (see the console README)`);
    out.users.push({ name: name as string, passwordHash: passwordHash as string });
  });
  grants.forEach((g: unknown, i) => {
    const { subject, tenants, role } = (g ?? {}) as Record<string, unknown>;
    if (typeof subject !== 'string' || !(subject === '*' || /^(user|group):.+/.test(subject)))
      fail(`grants[${i}].subject must be "user:<name>", "group:<name>" or "*"`);
    if (!isStringArray(tenants) || tenants.length === 0) fail(`grants[${i}].tenants must be a non-empty list`);
    if (role !== 'viewer' && role !== 'operator') fail(`grants[${i}].role must be viewer or operator`);
    out.grants.push({ subject: subject as string, tenants: tenants as string[], role: role as Role });
  });
  return out;
}

/** The caller's tenants and role from the grants that name the user, one of its groups, or everyone. */
export function resolveCaller(
  access: AccessFile,
  declared: readonly string[],
  user: string,
  groups: readonly string[],
): Caller {
  const subjects = new Set(['*', `user:${user}`, ...groups.map((g) => `group:${g}`)]);
  const allowed = new Set<string>();
  let role: Role | null = null;
  for (const g of access.grants) {
    if (!subjects.has(g.subject)) continue;
    for (const t of g.tenants) {
      if (t === '*') declared.forEach((d) => allowed.add(d));
      else if (declared.includes(t)) allowed.add(t);
    }
    if (g.role === 'operator' || role === null) role = g.role;
  }
  const tenants = declared.filter((t) => allowed.has(t));
  return {
    user,
    role: role ?? 'viewer',
    tenants,
    allTenants: tenants.length === declared.length && tenants.length > 0,
  };
}

/** Local development: no login, every tenant. */
export function openCaller(declared: readonly string[]): Caller {
  return { user: null, role: 'operator', tenants: [...declared], allTenants: true };
}

export function mayRead(caller: Caller, tenant: string): boolean {
  return caller.tenants.includes(tenant);
}

export function mayOperate(caller: Caller, tenant: string): boolean {
  return caller.role === 'operator' && caller.tenants.includes(tenant);
}

/** Input whose tenant could not be read is shown only to callers allowed every tenant. */
export function maySeeTenantOf(caller: Caller, tenant: string | null): boolean {
  return tenant === null ? caller.allTenants : caller.tenants.includes(tenant);
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

/** `scrypt$<salt hex>$<hash hex>`, for the access file. */
export function hashPassword(password: string, salt: Buffer = randomBytes(16)): string {
  const hash = scryptSync(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${salt.toString('hex')}$${hash.toString('hex')}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, saltHex, hashHex] = stored.split('$');
  if (scheme !== 'scrypt' || !saltHex || !hashHex) return false;
  const expected = Buffer.from(hashHex, 'hex');
  const actual = scryptSync(password, Buffer.from(saltHex, 'hex'), expected.length, {
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
  });
  return expected.length > 0 && timingSafeEqual(expected, actual);
}

/** Checks a login; the same work is done for unknown users, so timing does not tell which names exist. */
export function authenticate(access: AccessFile, name: string, password: string): boolean {
  const user = access.users.find((u) => u.name === name);
  const ok = verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
  return user !== undefined && ok;
}

const DUMMY_HASH = hashPassword('no such user', Buffer.alloc(16));

/** Signed, expiring session tokens: `<base64url payload>.<base64url HMAC-SHA256>`. */
export class SessionSigner {
  constructor(
    private readonly secret: string,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  issue(user: string): string {
    const payload = Buffer.from(JSON.stringify({ u: user, exp: this.clock() + this.ttlMs })).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /** The user of a valid, unexpired token; null otherwise. */
  verify(token: string | undefined): string | null {
    if (!token) return null;
    const [payload, mac] = token.split('.');
    if (!payload || !mac) return null;
    const expected = Buffer.from(this.mac(payload));
    const actual = Buffer.from(mac);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return null;
    try {
      const { u, exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { u: unknown; exp: unknown };
      return typeof u === 'string' && typeof exp === 'number' && exp > this.clock() ? u : null;
    } catch {
      return null;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }
}
