import type { Logger } from './logger';
import type { TenantDirectory } from './tenants';

/**
 * One instance of a service's per-tenant state (catalog, models, scorer) for every declared tenant:
 * built for each at start, for a tenant declared later as soon as the bucket says so, and disposed of
 * when a tenant is withdrawn. What one tenant holds is never reachable under another's name.
 */
export class PerTenant<T> {
  private readonly states = new Map<string, Promise<T>>();
  private readonly built_ = new Map<string, T>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly tenants: TenantDirectory,
    private readonly opts: {
      what: string;
      create: (tenant: string) => Promise<T>;
      dispose: (state: T, tenant: string) => Promise<void>;
      logger: Logger;
    },
  ) {}

  /** Builds every declared tenant's state (in order), then follows declarations. */
  async start(): Promise<void> {
    this.unsubscribe = this.tenants.onChange(({ added, removed }) => {
      for (const t of added)
        void this.get(t).catch((err: unknown) =>
          this.opts.logger.error(`${this.opts.what}: a new tenant failed to start`, { tenant: t, err }),
        );
      for (const t of removed) void this.drop(t);
    });
    for (const t of this.tenants.list()) await this.get(t);
  }

  /** The tenant's state, built on first use; TenantNotDeclaredError (NOT_FOUND) for an undeclared tenant. */
  get(tenant: string): Promise<T> {
    this.tenants.require(tenant);
    let state = this.states.get(tenant);
    if (!state) {
      state = this.opts.create(tenant);
      this.states.set(tenant, state);
      state.then(
        (s) => {
          if (this.states.has(tenant)) this.built_.set(tenant, s);
          this.opts.logger.info(`${this.opts.what}: serving tenant`, { tenant });
        },
        () => this.states.delete(tenant),
      );
    }
    return state;
  }

  /** The states already built, by tenant (for status pages and periodic work). */
  built(): Array<[string, T]> {
    return [...this.built_];
  }

  private async drop(tenant: string): Promise<void> {
    const state = this.states.get(tenant);
    if (!state) return;
    this.states.delete(tenant);
    this.built_.delete(tenant);
    const s = await state.catch(() => undefined);
    if (s !== undefined) await this.opts.dispose(s, tenant).catch(() => undefined);
    this.opts.logger.info(`${this.opts.what}: tenant withdrawn`, { tenant });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of [...this.states.keys()]) await this.drop(t);
  }
}
