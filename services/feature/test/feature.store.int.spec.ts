/** FeatureService over the real store: each event applied once, within a batch and across redeliveries. */
import { openStore, type StoreOf } from '@aisle/store';
import { tempSqliteUrl } from '@aisle/testkit';
import { FeatureService, type CatalogReader } from '../src/feature.service';
import { featureRepository } from '../src/feature.store';
import type { FeatureEvent } from '../src/features';

let storeFile: ReturnType<typeof tempSqliteUrl>;
let store: StoreOf<'documents'>;
/** No catalog: these tests count events, which need none. */
const noCatalog: CatalogReader = { getMany: async () => new Map(), scan: async function* () {} };
beforeAll(async () => {
  storeFile = tempSqliteUrl();
  store = await openStore(storeFile.url, ['documents']);
});
afterAll(async () => {
  await store?.close();
  storeFile?.dispose();
});

const view = (eventId: string, itemId: string, at: number): FeatureEvent => ({
  tenant: 'shop',
  eventId,
  type: 'view',
  userId: 'u1',
  sessionId: 's',
  itemId,
  query: '',
  quantity: 0,
  price: 0,
  occurredAt: at,
});

test('markers for a whole batch at once: a repeated event counts once, a redelivered batch not at all', async () => {
  const service = new FeatureService(featureRepository(store), noCatalog);
  const batch = [view('a', 'i1', 1000), view('b', 'i2', 2000), view('a', 'i1', 1000)];
  expect(await service.applyBatch(batch)).toMatchObject({ applied: 2, duplicates: 1 });
  expect(await service.applyBatch([...batch, view('c', 'i1', 3000)])).toMatchObject({ applied: 1, duplicates: 3 });
  const items = await featureRepository(store).getItems('shop', ['i1', 'i2'], false);
  expect(items.get('i1')?.views).toBe(2);
  expect(items.get('i2')?.views).toBe(1);
});
