import {
  evaluate,
  mulberry32,
  sasrecFor,
  shuffleInPlace,
  targetPositions,
  trainPart,
  type EpochReport,
  type Protocol,
  type Sasrec,
  type SasrecConfig,
  type SequenceDataset,
} from '@aisle/ml';
import type { Progress } from './progress';

/**
 * The documented rule for data larger than the training budget (docs/ml.md): the time of an epoch is
 * estimated from the measured throughput; when `minEpochs` epochs (plus the fine-tuning epochs) would not
 * fit in the budget, training uses a seeded random subset of users just large enough that they do.
 * Validation and test still use every user. Nothing is cut silently: the result records the share.
 */
export const SUBSAMPLE_RULE = { minEpochs: 6 } as const;

/**
 * How the served sequence model is trained, the same in the trainer job and in `aisle eval --model
 * pipeline` (docs/ml.md, chosen on Games validation with `--drop-last 1`): softmax over 2,000 negatives
 * drawn by item frequency with the log-Q correction (an epoch several times faster than the softmax over
 * every item, so a budget trains every user to convergence), then 4 epochs at 1e-3 on each user's
 * validation item, which a served history ends with and early stopping never trained on. Catalogs under
 * `minItems` train with the full softmax (2,000 negatives would be most of the catalog) and no fine-tuning.
 */
export const SERVED_SASREC_TRAINING = {
  minItems: 4000,
  loss: { kind: 'sampled', negatives: 2000, sampler: 'popularity' },
  fineTune: { epochs: 4, learningRate: 1e-3 },
} as const satisfies {
  minItems: number;
  loss: SasrecConfig['loss'];
  fineTune: { epochs: number; learningRate: number };
};

/** The served training for a catalog of `numItems`: the loss and the fine-tuning (0 epochs = none). */
export function servedSasrecTraining(numItems: number): {
  loss: SasrecConfig['loss'];
  fineTune: { epochs: number; learningRate: number };
} {
  return numItems >= SERVED_SASREC_TRAINING.minItems
    ? { loss: SERVED_SASREC_TRAINING.loss, fineTune: SERVED_SASREC_TRAINING.fineTune }
    : { loss: { kind: 'full' }, fineTune: { epochs: 0, learningRate: SERVED_SASREC_TRAINING.fineTune.learningRate } };
}

export interface SequenceTrainingOptions {
  protocol: Protocol;
  model: Partial<SasrecConfig>;
  /** Seconds for training and fine-tuning together. */
  budgetSeconds: number;
  /** After early stopping: epochs on the training items plus the validation item (0 = none). */
  fineTune?: { epochs: number; learningRate: number } | undefined;
  /**
   * Budget the fine-tuning epochs (subsampling rule and early-stopping reserve) but leave running them
   * to the caller (the pipeline fine-tunes after its ranker has read the validation world), with
   * `fineTuneUsers` from the result.
   */
  deferFineTune?: boolean;
  /** Data-parallel training replicas (worker threads); < 2 trains in this thread. */
  workers: number;
  progress: Progress;
}

export interface SequenceTrainingReport {
  epochs: EpochReport[];
  bestEpoch: number | undefined;
  seconds: number;
  config: SasrecConfig;
  workers: number;
  targetsPerSecond: number;
  subsample: { users: number; of: number; share: number; reason: string } | undefined;
  fineTune: { epochs: number; learningRate: number; losses: number[] } | undefined;
}

/** Users whose validation items early stopping reads (full ranking: at most 10,000, evenly spread). */
export function validationUsers(d: SequenceDataset, protocol: Protocol): number[] | undefined {
  if (protocol.kind === 'sampled') return undefined;
  const users = d.sequences.map((_, u) => u).filter((u) => (d.sequences[u]?.length ?? 0) >= 3);
  return users.length > 10_000 ? users.filter((_, i) => i % Math.ceil(users.length / 10_000) === 0) : users;
}

/**
 * Trains SASRec on every user's training part with early stopping on validation NDCG@10 under the
 * protocol, within the budget (subsampling users by SUBSAMPLE_RULE if need be), then fine-tunes on
 * training + validation items when asked.
 */
export async function trainSequenceModel(
  d: SequenceDataset,
  opts: SequenceTrainingOptions,
): Promise<{ model: Sasrec; report: SequenceTrainingReport; fineTuneUsers: number[] | undefined }> {
  const { progress } = opts;
  const model = sasrecFor(d, opts.model);
  const started = performance.now();
  const all = d.sequences.map((s) => trainPart(s));
  const totalTargets = all.reduce((a, s) => a + targetPositions(s, model.cfg.maxLen), 0);
  const targetsPerSecond = await model.throughput(all, { workers: opts.workers });
  const epochSeconds = totalTargets / targetsPerSecond;
  const fineTuneEpochs = opts.fineTune?.epochs ?? 0;
  const available = opts.budgetSeconds - (performance.now() - started) / 1000;
  const needed = (SUBSAMPLE_RULE.minEpochs + fineTuneEpochs) * epochSeconds;
  let train = all;
  let chosen: number[] | undefined;
  let subsample: SequenceTrainingReport['subsample'];
  if (needed > available) {
    const share = Math.max(0.05, available / needed);
    const users = shuffleInPlace(
      all.map((_, u) => u),
      mulberry32(model.cfg.seed + 29),
    ).slice(0, Math.round(all.length * share));
    users.sort((a, b) => a - b);
    chosen = users;
    train = users.map((u) => all[u] as Int32Array);
    subsample = {
      users: users.length,
      of: all.length,
      share,
      reason: `an epoch takes ~${epochSeconds.toFixed(0)} s (${targetsPerSecond.toFixed(0)} targets/s); ${SUBSAMPLE_RULE.minEpochs} epochs + ${fineTuneEpochs} fine-tuning must fit ${available.toFixed(0)} s`,
    };
    progress.log(`subsampling: training on ${users.length} of ${all.length} users (${subsample.reason})`);
  }
  progress.log(
    `training SASRec ${JSON.stringify(model.cfg)} ${opts.workers >= 2 ? `on ${opts.workers} data-parallel workers` : 'in one thread'}; ~${targetsPerSecond.toFixed(0)} targets/s, ~${((epochSeconds * train.length) / all.length).toFixed(0)} s per epoch`,
  );
  const deadline = started + opts.budgetSeconds * 1000;
  let epochMs = 0;
  // Leave time for the fine-tuning epochs (each about as long as a training epoch).
  const reserve = () => fineTuneEpochs * epochMs * 1.15;
  const users = validationUsers(d, opts.protocol);
  const { best, history } = await model.fit(d, {
    train,
    workers: opts.workers,
    onStep: (r) => progress.step(r),
    onEpoch: (r) => {
      epochMs = r.seconds * 1000;
      progress.log(
        `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, ${r.seconds.toFixed(0)} s, validation NDCG@10 ${r.validation.ndcg10.toFixed(4)} HR@10 ${r.validation.hr10.toFixed(4)}${r.best ? ' (best)' : ''}`,
      );
    },
    validate: (m) => evaluate(m, d, { split: 'valid', protocol: opts.protocol, ...(users ? { users } : {}) }),
    shouldStop: () => performance.now() + reserve() > deadline,
  });
  let fineTune: SequenceTrainingReport['fineTune'];
  if (opts.fineTune && fineTuneEpochs > 0 && !opts.deferFineTune) {
    progress.log(
      `fine-tuning ${fineTuneEpochs} epoch(s) on training + validation items at lr ${opts.fineTune.learningRate}`,
    );
    const losses = await model.fineTuneWithValidation(d, {
      ...opts.fineTune,
      workers: opts.workers,
      onStep: (r) => progress.step(r),
      ...(chosen ? { users: chosen } : {}),
    });
    progress.log(`fine-tuned: loss ${losses.map((l) => l.toFixed(4)).join(', ')}`);
    fineTune = { ...opts.fineTune, losses };
  }
  return {
    model,
    fineTuneUsers: chosen,
    report: {
      epochs: history,
      bestEpoch: best?.epoch,
      seconds: (performance.now() - started) / 1000,
      config: model.cfg,
      workers: opts.workers,
      targetsPerSecond,
      subsample,
      fineTune,
    },
  };
}
