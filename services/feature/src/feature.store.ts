import type { Store } from '@aisle/store';
import type { CatalogReader, FeatureRepository, FeatureUnitOfWork } from './feature.service';
import type { ItemState, TenantMeta, UserState } from './features';

const CONSUMER = 'feature';
const META_ID = 'tenant';

/** Maps the feature repository port onto the store's document collections. */
export function featureRepository(store: Store): FeatureRepository {
  const docs = store.documents;
  return {
    transact: (fn) =>
      docs.transact((tx) => {
        const uow: FeatureUnitOfWork = {
          getUsers: (t, ids) => tx.getMany<UserState>('user_features', t, ids),
          getItems: (t, ids) => tx.getMany<ItemState>('item_features', t, ids),
          getMeta: async (t) => (await tx.getMany<TenantMeta>('feature_meta', t, [META_ID])).get(META_ID),
          putUsers: (t, m) => tx.putMany('user_features', t, m),
          putItems: (t, m) => tx.putMany('item_features', t, m),
          putMeta: (t, meta) => tx.putMany('feature_meta', t, new Map([[META_ID, meta]])),
          markApplied: (t, id) => tx.markApplied(CONSUMER, t, id),
        };
        return fn(uow);
      }),
    getUsers: (t, ids) => docs.getMany<UserState>('user_features', t, ids),
    getItems: (t, ids) => docs.getMany<ItemState>('item_features', t, ids),
    getMeta: async (t) => (await docs.getMany<TenantMeta>('feature_meta', t, [META_ID])).get(META_ID),
    scanItems: (t) => docs.scan<ItemState>('item_features', t),
    listUserIds: (t, after, limit) => docs.listIds('user_features', t, after, limit),
  };
}

export function catalogReader(store: Store): CatalogReader {
  return {
    getMany: async (tenant, ids) => {
      const items = await store.items.getMany(tenant, ids);
      return new Map(
        [...items].map(([id, i]) => [id, { category: i.category, price: i.price, title: i.title, brand: i.brand, inStock: i.inStock }]),
      );
    },
    scan: (tenant) => store.items.scan(tenant),
  };
}
