import { generateShop } from '@aisle/datagen';
import { fromEvents, initBackend } from '@aisle/ml';
import { Progress } from './progress';
import {
  SERVED_SASREC_TRAINING,
  servedSasrecTraining,
  trainSequenceModel,
  type SequenceTrainingOptions,
} from './train-sequence';

jest.setTimeout(120_000);
beforeAll(async () => {
  await initBackend({});
});

const d = fromEvents('shop', generateShop({ seed: 5, users: 300, items: 120, days: 30 }).events);
const model = { dim: 16, layers: 1, heads: 1, ffn: 16, maxLen: 20, epochs: 1, patience: 1, seed: 3 };
const fineTune = { epochs: 4, learningRate: 1e-3 };

/** Trains the tiny model with `opts`, disposes it, and answers the rest. */
async function train(opts: Pick<SequenceTrainingOptions, 'budgetSeconds' | 'fineTune' | 'deferFineTune'>) {
  const { model: m, ...rest } = await trainSequenceModel(d, {
    protocol: { kind: 'full' },
    model,
    workers: 0,
    progress: new Progress(),
    ...opts,
  });
  m.dispose();
  return rest;
}

describe('trainSequenceModel', () => {
  test('a deferred fine-tuning is budgeted (subsampling counts its epochs) but left to the caller, with the users', async () => {
    // Too short for anything: the subsampling rule applies, and says the fine-tuning epochs are in it.
    const { report, fineTuneUsers } = await train({ budgetSeconds: 0.001, fineTune, deferFineTune: true });
    expect(report.fineTune).toBeUndefined();
    expect(report.subsample?.reason).toContain('6 epochs + 4 fine-tuning');
    expect(fineTuneUsers).toHaveLength(report.subsample?.users ?? -1);
    expect(fineTuneUsers?.length).toBeLessThan(d.users.length);
  });

  test('without deferring, the fine-tuning epochs run inside the call', async () => {
    const { report, fineTuneUsers } = await train({
      budgetSeconds: 600,
      fineTune: { epochs: 2, learningRate: 1e-3 },
    });
    expect(report.subsample).toBeUndefined();
    expect(fineTuneUsers).toBeUndefined();
    expect(report.fineTune?.losses).toHaveLength(2);
  });
});

test('the served training rule: sampled log-Q softmax and fine-tuning from 4,000 items, the full softmax below', () => {
  expect(servedSasrecTraining(SERVED_SASREC_TRAINING.minItems)).toEqual({
    loss: { kind: 'sampled', negatives: 2000, sampler: 'popularity' },
    fineTune: { epochs: 4, learningRate: 1e-3 },
  });
  const small = servedSasrecTraining(SERVED_SASREC_TRAINING.minItems - 1);
  expect(small.loss).toEqual({ kind: 'full' });
  expect(small.fineTune.epochs).toBe(0);
});
