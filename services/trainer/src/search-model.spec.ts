import { generateShop } from '@aisle/datagen';
import { CoClickSynonyms } from '@aisle/ml';
import { scoreSearchModel, trainSearchModel } from './search-model';

jest.setTimeout(120_000);

test('the search model learns from the catalog and the shop feedback, and is scored on later searches', async () => {
  const shop = generateShop({ seed: 3, users: 120, items: 120, days: 30 });
  const cut = shop.start + (shop.end - shop.start) * 0.8;
  // A planted synonym: shoppers type "couch" and choose items titled with the generator's nouns.
  const sofa = shop.items.find((i) => /\bsofa\b/i.test(i.title)) ?? shop.items[0];
  const planted = [0, 1, 2].flatMap((k) => [
    {
      type: 'search',
      userId: `p${k}`,
      sessionId: 's',
      itemId: '',
      query: ['couch', 'big couch', 'couch for two'][k] as string,
      occurredAt: shop.start + k,
      requestId: `r${k}`,
    },
    {
      type: 'click',
      userId: `p${k}`,
      sessionId: 's',
      itemId: sofa!.itemId,
      query: '',
      occurredAt: shop.start + k + 1,
      requestId: `r${k}`,
    },
  ]);
  const events = [...planted, ...shop.events];
  const model = await trainSearchModel(
    events.filter((e) => e.occurredAt < cut),
    shop.items,
    undefined,
    { seed: 1, pseudoQueries: 300, log: () => undefined },
  );
  expect(model.sidecar.trainedOn.feedbackQueries).toBeGreaterThan(20);
  const synonyms = CoClickSynonyms.fromJSON(model.sidecar.synonyms);
  const sofaTerms = new Set(sofa!.title.toLowerCase().split(/\W+/));
  expect([...synonyms.expand(['couch']).keys()].some((t) => sofaTerms.has(t))).toBe(true);
  const later = events.filter((e) => e.occurredAt >= cut);
  const score = await scoreSearchModel({ onnx: model.onnx, sidecar: { ...model.sidecar } }, later, shop.items, {
    seed: 1,
  });
  expect(score.cases).toBeGreaterThanOrEqual(20);
  // Generated queries are title words of the item the shopper then opens: most land on the first page.
  expect(score.value).toBeGreaterThan(0.3);
});
