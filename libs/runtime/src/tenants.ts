import { isValidTenant, NotFoundError, ResourceExhaustedError, TENANTS_BUCKET, TENANT_RULE } from '@aisle/contracts';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import type { Logger } from './logger';
import { counterIn } from './metrics';

/** Ranking's business rules for one tenant (defaults: the service's configuration). */
export interface TenantRules {
  /** Most results of one category in a list (0: the service's AISLE_RANKING_MAX_PER_CATEGORY). */
  readonly maxPerCategory?: number;
  /** Retention treatment: items a user at churn risk bought from are boosted by this much (0: off). */
  readonly retentionBoost?: number;
  /** Churn risk from which the retention boost applies (default 0.5). */
  readonly churnRiskThreshold?: number;
}

/** The model kinds a tenant may use (trained, published and served for it). */
export const TENANT_MODEL_KINDS = ['sasrec', 'text_encoder', 'ranker', 'churn', 'search_ranker', 'session'] as const;

/** What a platform team sets per tenant (in AISLE_TENANTS or the `aisle-tenants` bucket). */
export interface TenantSettings {
  /** Requests (or Track events) per second this instance admits for the tenant; 0 = no limit. */
  readonly rateLimit: number;
  /** Ranking's rules for this tenant (bucket only). */
  readonly rules?: TenantRules;
  /**
   * The learned models this tenant uses (bucket only; default all): the trainer trains and publishes only
   * these for it, and ranking serves its fallback (heuristic ranker, catalog search scorer, no session
   * model) for a kind left out, whatever the registry holds.
   */
  readonly models?: ReadonlyArray<(typeof TENANT_MODEL_KINDS)[number]>;
}

/** Whether a tenant uses a model kind (every kind, unless its settings list the ones it uses). */
export function usesModel(settings: TenantSettings | undefined, kind: string): boolean {
  return !settings?.models || (settings.models as readonly string[]).includes(kind);
}

export interface DeclaredTenant {
  readonly name: string;
  readonly settings: TenantSettings;
}

/**
 * Parses AISLE_TENANTS: tenant names separated by commas, each optionally with its rate limit
 * (`default,shop-b=200`).
 */
export function parseTenantList(raw: string): DeclaredTenant[] {
  const out = new Map<string, DeclaredTenant>();
  for (const part of raw.split(',').map((p) => p.trim())) {
    if (!part) continue;
    const [name = '', limit] = part.split('=').map((s) => s.trim());
    if (!isValidTenant(name)) throw new Error(`'${name}' is not a tenant name: ${TENANT_RULE}`);
    if (limit !== undefined && !/^\d+$/.test(limit))
      throw new Error(`rate limit of '${name}' must be a whole number of requests per second, got '${limit}'`);
    out.set(name, { name, settings: { rateLimit: limit === undefined ? 0 : Number(limit) } });
  }
  if (out.size === 0) throw new Error('declares no tenant');
  return [...out.values()];
}

/**
 * A bucket entry's settings: JSON such as `{"rateLimit": 200, "rules": {"maxPerCategory": 2},
 * "models": ["sasrec", "ranker"]}` (an empty value means the defaults). Unknown keys are refused, so a typo
 * does not silently leave a tenant on the defaults.
 */
export function parseTenantSettings(value: string): TenantSettings {
  if (value.trim() === '') return { rateLimit: 0 };
  const parsed = JSON.parse(value) as unknown;
  const object = (v: unknown, what: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
    return v as Record<string, unknown>;
  };
  const o = object(parsed, 'settings (like {"rateLimit": 200})');
  const unknown = (r: Record<string, unknown>, known: string[], where: string) => {
    const extra = Object.keys(r).filter((k) => !known.includes(k));
    if (extra.length > 0) throw new Error(`${where}unknown setting '${extra[0]}' (known: ${known.join(', ')})`);
  };
  unknown(o, ['rateLimit', 'rules', 'models'], '');
  const number = (v: unknown, what: string, min: number, max: number, integer = false): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v)))
      throw new Error(`${what} must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}`);
    return v;
  };
  const rate = number(o['rateLimit'], 'rateLimit', 0, 1_000_000, true) ?? 0;
  let rules: TenantRules | undefined;
  if (o['rules'] !== undefined) {
    const r = object(o['rules'], 'rules');
    unknown(r, ['maxPerCategory', 'retentionBoost', 'churnRiskThreshold'], 'rules: ');
    rules = {
      ...(r['maxPerCategory'] !== undefined
        ? { maxPerCategory: number(r['maxPerCategory'], 'rules.maxPerCategory', 0, 1000, true) }
        : {}),
      ...(r['retentionBoost'] !== undefined
        ? { retentionBoost: number(r['retentionBoost'], 'rules.retentionBoost', 0, 10) }
        : {}),
      ...(r['churnRiskThreshold'] !== undefined
        ? { churnRiskThreshold: number(r['churnRiskThreshold'], 'rules.churnRiskThreshold', 0, 1) }
        : {}),
    };
  }
  let models: TenantSettings['models'];
  if (o['models'] !== undefined) {
    const m = o['models'];
    if (!Array.isArray(m) || m.some((k) => !(TENANT_MODEL_KINDS as readonly unknown[]).includes(k)))
      throw new Error(`models must be a list of model kinds (${TENANT_MODEL_KINDS.join(', ')})`);
    models = m as TenantSettings['models'];
  }
  return { rateLimit: rate, ...(rules ? { rules } : {}), ...(models ? { models } : {}) };
}

export class TenantNotDeclaredError extends NotFoundError {
  override readonly name = 'TenantNotDeclaredError';
  constructor(readonly tenant: string) {
    super(`tenant '${tenant}' is not declared (AISLE_TENANTS or the ${TENANTS_BUCKET} bucket)`);
  }
}

export class TenantRateLimitedError extends ResourceExhaustedError {
  override readonly name = 'TenantRateLimitedError';
  constructor(
    readonly tenant: string,
    readonly limit: number,
  ) {
    super(`tenant '${tenant}' is over its limit of ${limit} requests per second; retry with backoff`);
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

type Listener = (change: { added: string[]; removed: string[] }) => void;
type SettingsListener = (tenant: string) => void;

/**
 * The tenants this deployment serves: those of AISLE_TENANTS (always), plus those a platform team puts
 * into the `aisle-tenants` bucket while it runs (`watchTenantBucket`). Anything naming another tenant
 * is refused: NOT_FOUND over gRPC, dead-lettered on the bus. Also the per-tenant rate limits (a token
 * bucket per tenant and instance, so a burst of one shop cannot starve the others).
 */
export class TenantDirectory {
  private readonly fixed: Map<string, TenantSettings>;
  private readonly dynamic = new Map<string, TenantSettings>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly listeners = new Set<Listener>();
  private readonly settingsListeners = new Set<SettingsListener>();

  constructor(
    declared: readonly DeclaredTenant[],
    private readonly clock: () => number = Date.now,
  ) {
    this.fixed = new Map(declared.map((d) => [d.name, d.settings]));
  }

  has(tenant: string): boolean {
    return this.fixed.has(tenant) || this.dynamic.has(tenant);
  }

  /** AISLE_TENANTS in their order, then the bucket's. */
  list(): string[] {
    return [...new Set([...this.fixed.keys(), ...this.dynamic.keys()])];
  }

  settings(tenant: string): TenantSettings | undefined {
    return this.dynamic.get(tenant) ?? this.fixed.get(tenant);
  }

  /** The tenant itself when declared; TenantNotDeclaredError (NOT_FOUND) otherwise. */
  require(tenant: string): string {
    if (!this.has(tenant)) throw new TenantNotDeclaredError(tenant);
    return tenant;
  }

  /**
   * Takes `cost` tokens of the tenant's bucket (refilled at its rate, holding at most one second's
   * worth); TenantRateLimitedError when they are not there. Tenants without a limit always pass.
   */
  admit(tenant: string, cost = 1): void {
    const limit = this.settings(tenant)?.rateLimit ?? 0;
    if (limit <= 0) return;
    const now = this.clock();
    const b = this.buckets.get(tenant) ?? { tokens: limit, at: now };
    b.tokens = Math.min(limit, b.tokens + ((now - b.at) / 1000) * limit);
    b.at = now;
    this.buckets.set(tenant, b);
    if (b.tokens < cost) throw new TenantRateLimitedError(tenant, limit);
    b.tokens -= cost;
  }

  /** Called with the tenants added and removed at run time; returns the unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called with a tenant whose settings changed at run time (put into the bucket again, or withdrawn). */
  onSettings(listener: SettingsListener): () => void {
    this.settingsListeners.add(listener);
    return () => this.settingsListeners.delete(listener);
  }

  /**
   * Declares (settings) or withdraws (undefined) a tenant of the bucket; fixed tenants stay declared (the
   * bucket's settings, while there, override theirs).
   */
  setDynamic(tenant: string, settings: TenantSettings | undefined): void {
    const before = this.has(tenant);
    if (settings) this.dynamic.set(tenant, settings);
    else this.dynamic.delete(tenant);
    this.buckets.delete(tenant);
    const after = this.has(tenant);
    for (const l of this.settingsListeners) l(tenant);
    if (before === after) return;
    const change = after ? { added: [tenant], removed: [] } : { added: [], removed: [tenant] };
    for (const l of this.listeners) l(change);
  }
}

/**
 * Follows the `aisle-tenants` KV bucket (created if missing): each key is a tenant, its value the
 * tenant's settings as JSON. A tenant put there is served by every service without a redeploy; a bad
 * entry is logged and ignored. Resolves once the bucket's current entries are applied.
 */
export async function watchTenantBucket(
  nc: NatsConnection,
  directory: TenantDirectory,
  opts: { logger: Logger; replicas?: number; registry?: Registry },
): Promise<{ bucket: KV; stop(): void }> {
  const bucket = await new Kvm(nc).create(TENANTS_BUCKET, {
    replicas: opts.replicas ?? 1,
    history: 1,
    description: 'Declared Aisle tenants and their settings',
  });
  const iter = await bucket.watch();
  const changes = opts.registry
    ? counterIn(opts.registry, 'aisle_tenant_changes_total', 'Tenant declarations applied from the bucket', ['result'])
    : undefined;
  let initial: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    initial = resolve;
  });
  void (async () => {
    for await (const e of iter) {
      if (!isValidTenant(e.key)) {
        opts.logger.warn('tenant bucket: ignoring a key that is not a tenant name', { key: e.key });
        changes?.inc({ result: 'invalid' });
      } else if (e.operation === 'DEL' || e.operation === 'PURGE') {
        directory.setDynamic(e.key, undefined);
        changes?.inc({ result: 'removed' });
      } else {
        try {
          directory.setDynamic(e.key, parseTenantSettings(e.string()));
          changes?.inc({ result: 'declared' });
        } catch (err) {
          opts.logger.warn('tenant bucket: ignoring invalid settings', { tenant: e.key, err });
          changes?.inc({ result: 'invalid' });
        }
      }
      if (e.delta === 0) initial?.();
    }
  })().catch((err: unknown) => opts.logger.warn('tenant bucket watch ended', { err }));
  // An empty bucket delivers nothing: do not wait for an entry that will never come.
  const status = await bucket.status();
  if (status.values === 0) initial?.();
  await ready;
  return { bucket, stop: () => iter.stop() };
}
