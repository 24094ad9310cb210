import { followCatalog, PerTenant, type CatalogFeed, type JetStreamClient, type ServiceBase } from '@aisle/runtime';
import type { CatalogEntry, CatalogReader } from './feature.service';

interface TenantCatalog {
  readonly items: Map<string, CatalogEntry>;
  readonly feed: CatalogFeed;
}

/**
 * The catalog as the feature service reads it: each declared tenant's, materialized in memory (the fields
 * features use, no descriptions or attributes) from the accepted catalog ingest publishes on ITEMS. A
 * tenant's catalog is replayed in full before its first read is answered, then kept up to date; a
 * withdrawn tenant's is dropped. Undeclared tenants have no items.
 */
export class MaterializedCatalog implements CatalogReader {
  private readonly tenants: PerTenant<TenantCatalog>;

  constructor(
    private readonly base: ServiceBase,
    js: JetStreamClient,
  ) {
    this.tenants = new PerTenant<TenantCatalog>(base.tenants, {
      what: 'feature catalog',
      logger: base.logger,
      create: async (tenant) => {
        const items = new Map<string, CatalogEntry>();
        const feed = await followCatalog(js, tenant, {
          logger: base.logger,
          registry: base.registry,
          onItems: (batch) => {
            for (const i of batch)
              items.set(i.itemId, {
                category: i.category,
                price: i.price,
                title: i.title,
                brand: i.brand,
                inStock: i.inStock,
              });
          },
        });
        return { items, feed };
      },
      dispose: (t) => t.feed.stop(),
    });
  }

  /** Replays every declared tenant's catalog, then follows declarations. */
  start(): Promise<void> {
    return this.tenants.start();
  }

  stop(): Promise<void> {
    return this.tenants.stop();
  }

  async getMany(tenant: string, ids: readonly string[]): Promise<Map<string, CatalogEntry>> {
    const out = new Map<string, CatalogEntry>();
    if (!this.base.tenants.has(tenant)) return out;
    const { items } = await this.tenants.get(tenant);
    for (const id of ids) {
      const e = items.get(id);
      if (e) out.set(id, e);
    }
    return out;
  }

  async *scan(tenant: string): AsyncIterable<{ itemId: string; category: string }> {
    if (!this.base.tenants.has(tenant)) return;
    const { items } = await this.tenants.get(tenant);
    for (const [itemId, e] of items) yield { itemId, category: e.category };
  }
}
