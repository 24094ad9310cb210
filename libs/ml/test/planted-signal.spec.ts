/**
 * The models learn the signals the generated shop plants (libs/datagen): next-item structure for the
 * sequence model, drifting users for churn. Small, fast, and able to fail.
 */
import { generateShop } from '@aisle/datagen';
import {
  buildDataset,
  churnFeatures,
  ChurnClassifier,
  coVisitation,
  evaluate,
  fromEvents,
  initBackend,
  mostPop,
  rocAuc,
  Sasrec,
  type ActivitySummary,
} from '../src';

jest.setTimeout(120_000);
beforeAll(async () => {
  await initBackend({});
});

const shop = generateShop({ seed: 11, users: 500, items: 240, days: 60 });

test('SASRec beats MostPop clearly on held-out users', async () => {
  const all = fromEvents('shop', shop.events);
  // Held-out users: the model never trains on them; their last item is the target.
  const trainUsers = all.users.map((_, u) => u).filter((u) => u % 5 !== 0);
  const testUsers = all.users.map((_, u) => u).filter((u) => u % 5 === 0 && (all.sequences[u]?.length ?? 0) >= 3);
  const train = {
    ...all,
    users: trainUsers.map((u) => all.users[u] as string),
    sequences: trainUsers.map((u) => all.sequences[u] as Int32Array),
  };
  const model = new Sasrec(all.itemIds.length - 1, {
    dim: 32,
    layers: 1,
    heads: 1,
    ffn: 32,
    maxLen: 30,
    epochs: 10,
    dropout: 0.2,
    learningRate: 5e-3,
    validationUsers: 300,
    patience: 3,
  });
  await model.fit(train);
  // People re-view items in a shop: rank against every item, earlier ones included.
  const opts = { split: 'test' as const, protocol: { kind: 'full' as const }, users: testUsers, excludeHistory: false };
  const ours = await evaluate(model, all, opts);
  const pop = await evaluate(mostPop(train, 'train'), all, opts);
  const covis = await evaluate(coVisitation(train), all, opts);

  console.log(
    `held-out users ${testUsers.length}: NDCG@10 SASRec ${ours.ndcg10.toFixed(3)}, MostPop ${pop.ndcg10.toFixed(3)}, co-visitation ${covis.ndcg10.toFixed(3)}`,
  );
  expect(ours.ndcg10).toBeGreaterThan(2 * pop.ndcg10);
  expect(ours.hr10).toBeGreaterThan(pop.hr10 + 0.1);
  model.dispose();
  expect(buildDataset('x', []).users).toEqual([]);
});

test('churn classifier separates drifting from steady users (ROC AUC > 0.8)', async () => {
  const horizon = 14 * 86_400_000;
  const cutoff = shop.end - horizon;
  const byUser = new Map<string, typeof shop.events>();
  for (const e of shop.events) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
  const rows: Array<{ x: Float32Array; y: number }> = [];
  for (const [, events] of byUser) {
    const before = events.filter((e) => e.occurredAt < cutoff);
    if (before.length === 0) continue;
    const purchases = before.filter((e) => e.type === 'purchase');
    const summary: ActivitySummary = {
      firstAt: before[0]!.occurredAt,
      lastAt: before[before.length - 1]!.occurredAt,
      visits: new Set(before.map((e) => e.sessionId)).size,
      events: before.length,
      purchases: purchases.length,
      spend: purchases.reduce((a, p) => a + p.price * p.quantity, 0),
      recentEvents: before.map((e) => e.occurredAt),
      recentPurchases: purchases.map((p) => ({ at: p.occurredAt, amount: p.price * p.quantity })),
    };
    rows.push({ x: churnFeatures(summary, cutoff), y: events.some((e) => e.occurredAt >= cutoff) ? 0 : 1 });
  }
  const train = rows.filter((_, i) => i % 10 < 7);
  const test = rows.filter((_, i) => i % 10 >= 7);
  expect(test.filter((r) => r.y).length).toBeGreaterThan(10);
  const clf = new ChurnClassifier();
  await clf.fit(
    train.map((r) => r.x),
    train.map((r) => r.y),
  );
  const auc = rocAuc(
    test.map((r) => clf.predict(r.x)),
    test.map((r) => r.y),
  );

  console.log(`churn on generated users: ${test.length} test users, ROC AUC ${auc.toFixed(3)}`);
  expect(auc).toBeGreaterThan(0.8);
});
