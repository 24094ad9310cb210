import type { StoreOf } from '@aisle/store';
import type { FeatureRepository, FeatureUnitOfWork } from './feature.service';
import type { ItemState, TenantMeta, UserState } from './features';

/** Whose applied-markers these are in the store. */
export const APPLIED_MARKER_CONSUMER = 'feature';
const META_ID = 'tenant';

type CoVisits = ItemState['coVisits'];

/**
 * Items are stored in two documents: the counters (read by every ranking request) and the co-visit map
 * (read only when co-visits are asked for), so that the common read parses a fraction of the state.
 */
async function readItems(
  getMany: <T>(c: 'item_features' | 'item_covisits', t: string, ids: readonly string[]) => Promise<Map<string, T>>,
  tenant: string,
  ids: readonly string[],
  withCoVisits: boolean,
): Promise<Map<string, ItemState>> {
  const [items, covis] = await Promise.all([
    getMany<ItemState>('item_features', tenant, ids),
    withCoVisits ? getMany<CoVisits>('item_covisits', tenant, ids) : Promise.resolve(new Map<string, CoVisits>()),
  ]);
  for (const [id, s] of items) s.coVisits = covis.get(id) ?? {};
  return items;
}

function splitItems(items: ReadonlyMap<string, ItemState>): {
  slim: Map<string, ItemState>;
  covis: Map<string, CoVisits>;
} {
  const slim = new Map<string, ItemState>();
  const covis = new Map<string, CoVisits>();
  for (const [id, s] of items) {
    slim.set(id, { ...s, coVisits: {} });
    covis.set(id, s.coVisits);
  }
  return { slim, covis };
}

/** Maps the feature repository port onto the store's document collections. */
export function featureRepository(store: StoreOf<'documents'>): FeatureRepository {
  const docs = store.documents;
  return {
    transact: (fn) =>
      docs.transact((tx) => {
        const uow: FeatureUnitOfWork = {
          getUsers: (t, ids) => tx.getMany<UserState>('user_features', t, ids),
          getItems: (t, ids) => readItems((c, tt, i) => tx.getMany(c, tt, i), t, ids, true),
          getMeta: async (t) => (await tx.getMany<TenantMeta>('feature_meta', t, [META_ID])).get(META_ID),
          putUsers: (t, m) => tx.putMany('user_features', t, m),
          putItems: async (t, m) => {
            const { slim, covis } = splitItems(m);
            await tx.putMany('item_features', t, slim);
            await tx.putMany('item_covisits', t, covis);
          },
          putMeta: (t, meta) => tx.putMany('feature_meta', t, new Map([[META_ID, meta]])),
          deleteUsers: (t, ids) => tx.deleteMany('user_features', t, ids),
          markApplied: (t, ids) => tx.markApplied(APPLIED_MARKER_CONSUMER, t, ids),
        };
        return fn(uow);
      }),
    getUsers: (t, ids) => docs.getMany<UserState>('user_features', t, ids),
    getItems: (t, ids, withCoVisits) => readItems((c, tt, i) => docs.getMany(c, tt, i), t, ids, withCoVisits),
    getMeta: async (t) => (await docs.getMany<TenantMeta>('feature_meta', t, [META_ID])).get(META_ID),
    scanItems: (t) => docs.scan<ItemState>('item_features', t),
    listUserIds: (t, after, limit) => docs.listIds('user_features', t, after, limit),
  };
}
