/**
 * The served SASRec rule's large-catalog branch, end to end in the trainer: a shop of 4,000+ items trains with
 * the sampled log-Q softmax, fine-tunes on the validation items, exports to ONNX, and the exported graph is
 * scored on the held-out slice through onnxruntime, as the job does before publishing.
 */
import { generateShop } from '@aisle/datagen';
import { initBackend } from '@aisle/ml';
import { heldOutSlice, scoreOnHeldOut, trainCandidates, type ShopEvent } from './pipeline';
import { SERVED_SASREC_TRAINING } from './train-sequence';

jest.setTimeout(240_000);

beforeAll(async () => {
  await initBackend({});
});

test('a catalog of 4,000+ items trains the sequence model the sampled way, and the published graph scores the held-out slice', async () => {
  const shop = generateShop({ seed: 11, items: 6000, users: 1500, days: 30, sessionsPerWeek: 4 });
  const events: readonly ShopEvent[] = shop.events;
  const opts = { heldOutShare: 0.1, churnHorizonDays: 7 };
  const heldOut = heldOutSlice(events, shop.items, opts);
  const before = events.filter((e) => e.occurredAt < heldOut.sliceStart);
  const seen = new Set(before.filter((e) => e.itemId).map((e) => e.itemId));
  expect(seen.size).toBeGreaterThanOrEqual(SERVED_SASREC_TRAINING.minItems);
  const logs: string[] = [];
  const { candidates, untrained } = await trainCandidates(events, shop.items, heldOut, {
    ...opts,
    models: ['sasrec'],
    sasrec: { epochs: 2, validationUsers: 300 },
    text: {},
    rankerEpochs: 1,
    seed: 1,
    log: (m) => {
      logs.push(m);
      if (process.env['AISLE_TEST_VERBOSE']) process.stderr.write(`${m}\n`);
    },
  });
  expect(untrained).toEqual([]);
  const sasrec = candidates.find((c) => c.name === 'sasrec');
  if (!sasrec) throw new Error(`no sasrec candidate; logs: ${logs.join(' | ')}`);
  expect(sasrec.sidecar['training']).toEqual({
    loss: SERVED_SASREC_TRAINING.loss,
    fineTuneEpochs: SERVED_SASREC_TRAINING.fineTune.epochs,
  });
  const fineTuneEpochs = SERVED_SASREC_TRAINING.fineTune.epochs;
  expect(logs.some((l) => l.startsWith(`sasrec fine-tuned ${fineTuneEpochs} epoch(s)`))).toBe(true);
  expect(sasrec.curves.find((c) => c.name === 'fine_tune_loss')?.values).toHaveLength(fineTuneEpochs);
  expect((sasrec.sidecar['itemIds'] as string[]).length - 1).toBeGreaterThanOrEqual(SERVED_SASREC_TRAINING.minItems);
  const score = await scoreOnHeldOut('sasrec', sasrec, heldOut, { sasrec: undefined, trainEvents: before });
  if (process.env['AISLE_TEST_VERBOSE']) process.stderr.write(`held-out ${JSON.stringify(score)}\n`);
  expect(score.metric).toBe('ndcg@10');
  expect(score.cases).toBeGreaterThan(100);
  // Far above chance over 6,000 items (1/6000 hit rate at 10 is ~0.002 NDCG): the model learned the shop.
  expect(score.value).toBeGreaterThan(0.02);
});
