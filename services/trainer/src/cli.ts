#!/usr/bin/env node
/**
 * `pnpm aisle <command>`:
 *   eval --dataset DIR --model pipeline|sasrec|text|search|ranker|churn [--protocol full|sampled100|sessions] [...]
 *   model-keys --out FILE   a model signing key pair (see below)
 *   train (see main.ts for the trainer job)
 */
import { defaultTrainWorkers, SASREC_SIZES, type Protocol, type SasrecConfig } from '@aisle/ml';
import { generateModelKeys } from '@aisle/runtime';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { numberOption, option, parseArgs, UsageError, type OptionSpec, type ParsedArgs } from './args';
import { evaluateSequenceModel, formatSequenceResult } from './eval-sequence';
import { evaluateChurn } from './eval-churn';
import { evaluatePipeline, formatPipelineResult } from './eval-pipeline';
import { evaluateRanker } from './eval-ranker';
import { evaluateSessionLog, formatSessionResult } from './eval-session';
import { evaluateTextEncoder } from './eval-text';
import { SERVED_SASREC_TRAINING } from './train-sequence';
import { evaluateSearch } from './eval-search';

const USAGE = `usage: pnpm aisle eval --dataset <dir> --model pipeline|sasrec|ranker|text|search|churn [options]
       pnpm aisle eval --dataset <dir> --protocol sessions [--seed N] [--budget S] [--predictions-out FILE]

  --protocol full|sampled100|sessions
                               full ranking (earlier items excluded), 100 sampled negatives (default full), or
                               anonymous sessions (train_sessions.txt + test_pairs.tsv; P@20, MRR@20)
  --seed N                     seed for sampling and training (default 1)
  --size small|base|large      model size preset (default base: dim 64, 2 blocks, 2 heads)
  --epochs N  --lr X  --dropout X  --max-len N  --patience N
  --loss full|sampled:N|sampled-logq:N
                               softmax over all items (default; pipeline: as the trainer job trains the served
                               model, sampled-logq:2000 for catalogs of 4,000 items or more), N uniform
                               negatives, or N negatives drawn by item frequency with the log-Q correction
  --budget SECONDS             SASRec training seconds, best epoch kept (default 780; pipeline 540; data larger
                               than the budget is subsampled by users, see docs/ml.md)
  --workers N                  data-parallel training threads (default: one per core, at most 4; 0 = this thread)
  --drop-last N                evaluate N steps earlier (each user's last N items removed): with 1, "test" is the
                               validation split, for choosing defaults without reading the test items
  --max-users N                evaluate at most N users (sampled protocol: a seeded random N, default 10,000;
                               pipeline with full ranking: N evenly spread, default all): for iterating, not figures
  --out FILE                   results JSON (default bench-results/eval-<dataset>-<model>-<protocol>.json)
  --curve FILE                 training curve SVG (default: next to --out)
  --finetune-epochs N --finetune-lr X
                               epochs on training + validation items after early stopping (default 0;
                               pipeline: as served, 4 at 1e-3 for catalogs of 4,000 items or more, inside --budget)
  --predictions-out FILE       JSON lines {"user", "items"}: every test user's top 50, earlier items excluded
                               (pipeline, sampled protocol: the target and its negatives in the served order);
                               sessions: {"i": line of test_pairs.tsv (0-based), "items": top 20};
                               search: {"qid", "items"}, each query's top 50 from the model trained without its fold
  --validation                 text: score validation title fragments (never a training or test fragment) with
                               the served Search's ablations instead of the test fragments
  --dim N  --pairs-per-item N  --batch-size N  --pseudo-queries N
                               search: the text encoder's size and training pairs, the default scorer's queries

       pnpm aisle model-keys --out FILE
  writes a new Ed25519 private key (PEM) to FILE for the trainer's AISLE_MODEL_SIGNING_KEY_FILE (keep it in a
  Secret) and prints the public key for the services' AISLE_MODEL_PUBLIC_KEY`;

/** Every option `aisle eval` accepts; anything else is a usage error (exit 2). */
const EVAL_OPTIONS: OptionSpec = Object.fromEntries(
  [
    'dataset',
    'model',
    'protocol',
    'seed',
    'size',
    'epochs',
    'lr',
    'dropout',
    'max-len',
    'patience',
    'loss',
    'budget',
    'out',
    'curve',
    'predictions-out',
    'finetune-epochs',
    'finetune-lr',
    'dim',
    'fragments',
    'candidates',
    'test-share',
    'workers',
    'drop-last',
    'max-users',
    'pairs-per-item',
    'batch-size',
    'pseudo-queries',
  ]
    .map((name): [string, { type: 'string' | 'boolean' }] => [name, { type: 'string' }])
    .concat([['validation', { type: 'boolean' }]]),
);

/**
 * Fine-tuning on the validation items after early stopping. Off by default: its earlier default
 * (2 epochs at 5e-4) was chosen on a test split; see docs/ml.md for the one-step-earlier comparison.
 */
export const FINE_TUNE_DEFAULT = { epochs: 0, learningRate: 5e-4 };

/** SASRec's training seconds within `--model pipeline` (the rest of its 15 minutes: ranker and evaluation). */
const PIPELINE_TRAIN_BUDGET_SECONDS = 540;

function fineTuneOf(
  args: ParsedArgs,
  defaults: { readonly epochs: number; readonly learningRate: number } = FINE_TUNE_DEFAULT,
): { epochs: number; learningRate: number } {
  return {
    epochs: numberOption(args, 'finetune-epochs', defaults.epochs),
    learningRate: numberOption(args, 'finetune-lr', defaults.learningRate),
  };
}

function protocolOf(args: ParsedArgs): Protocol {
  const p = option(args, 'protocol', 'full');
  const seed = numberOption(args, 'seed', 1);
  if (p === 'full') return { kind: 'full' };
  const m = /^sampled(\d+)$/.exec(p);
  if (m) return { kind: 'sampled', negatives: Number(m[1]), seed, maxUsers: numberOption(args, 'max-users', 10_000) };
  throw new UsageError(`--protocol must be full or sampled100, got '${p}'`);
}

/** `defaultLoss` null: no --loss leaves the loss to the evaluation (the pipeline's served rule). */
function sasrecConfig(args: ParsedArgs, protocol: Protocol, defaultLoss: string | null): Partial<SasrecConfig> {
  const size = option(args, 'size', 'base');
  if (!(size in SASREC_SIZES)) throw new UsageError(`--size must be small, base or large`);
  const cfg: Partial<SasrecConfig> = {
    ...SASREC_SIZES[size as keyof typeof SASREC_SIZES],
    // Measured on Amazon Beauty (docs/ml.md): 3e-3 with dropout 0.3 reaches the best validation
    // NDCG in ~11 epochs; 1e-3 needs twice as many.
    learningRate: numberOption(args, 'lr', 3e-3),
    dropout: numberOption(args, 'dropout', 0.3),
    epochs: numberOption(args, 'epochs', 16),
    patience: numberOption(args, 'patience', 3),
    maxLen: numberOption(args, 'max-len', 50),
    seed: numberOption(args, 'seed', 1),
  };
  const loss = args.options.get('loss') ?? defaultLoss;
  if (loss === null) return cfg;
  if (loss === 'full') cfg.loss = { kind: 'full' };
  else {
    const m = /^sampled(-logq)?:(\d+)$/.exec(loss);
    if (!m) throw new UsageError(`--loss must be full, sampled:N or sampled-logq:N`);
    cfg.loss = { kind: 'sampled', negatives: Number(m[2]), sampler: m[1] ? 'popularity' : 'uniform' };
  }
  void protocol;
  return cfg;
}

async function evalCommand(args: ParsedArgs): Promise<void> {
  const dataset = option(args, 'dataset');
  if (option(args, 'protocol', 'full') === 'sessions') {
    const model = option(args, 'model', 'session');
    if (model !== 'session') throw new UsageError(`--protocol sessions evaluates --model session, not '${model}'`);
    const out = option(args, 'out', join('bench-results', `eval-${basename(dataset)}-session-sessions.json`));
    const r = await evaluateSessionLog({
      dataset,
      seed: numberOption(args, 'seed', 1),
      out,
      predictionsOut: args.options.get('predictions-out'),
      tuneBudgetSeconds: numberOption(args, 'budget', 600),
    });
    process.stdout.write(`${formatSessionResult(r)}\n\nwrote ${out}\n`);
    if (args.options.get('predictions-out')) process.stdout.write(`wrote ${args.options.get('predictions-out')}\n`);
    return;
  }
  const model = option(args, 'model');
  const protocol = protocolOf(args);
  const tag = `${basename(dataset)}-${model}-${protocol.kind === 'full' ? 'full' : `sampled${protocol.negatives}`}`;
  const out = option(args, 'out', join('bench-results', `eval-${tag}.json`));
  const curve = option(args, 'curve', out.replace(/\.json$/, '') + '-curve.svg');
  switch (model) {
    case 'sasrec': {
      const r = await evaluateSequenceModel({
        dataset,
        protocol,
        model: sasrecConfig(args, protocol, 'full'),
        trainBudgetSeconds: numberOption(args, 'budget', 780),
        out,
        curve,
        predictionsOut: args.options.get('predictions-out'),
        workers: numberOption(args, 'workers', defaultTrainWorkers()),
        dropLast: numberOption(args, 'drop-last', 0),
        fineTune: fineTuneOf(args),
      });
      process.stdout.write(formatSequenceResult(r) + `\n\nwrote ${out}\nwrote ${curve}\n`);
      if (args.options.get('predictions-out')) process.stdout.write(`wrote ${args.options.get('predictions-out')}\n`);
      return;
    }
    case 'pipeline': {
      const r = await evaluatePipeline({
        dataset,
        protocol,
        seed: numberOption(args, 'seed', 1),
        // Without --loss / --finetune-*: the served training rule for the catalog (SERVED_SASREC_TRAINING).
        model: sasrecConfig(args, protocol, null),
        trainBudgetSeconds: numberOption(args, 'budget', PIPELINE_TRAIN_BUDGET_SECONDS),
        out,
        predictionsOut: args.options.get('predictions-out'),
        workers: numberOption(args, 'workers', defaultTrainWorkers()),
        dropLast: numberOption(args, 'drop-last', 0),
        maxUsers: args.options.has('max-users') ? numberOption(args, 'max-users', 0) : undefined,
        fineTune:
          args.options.has('finetune-epochs') || args.options.has('finetune-lr')
            ? fineTuneOf(args, SERVED_SASREC_TRAINING.fineTune)
            : undefined,
      });
      process.stdout.write(formatPipelineResult(r) + `\n\nwrote ${out}\n`);
      if (args.options.get('predictions-out')) process.stdout.write(`wrote ${args.options.get('predictions-out')}\n`);
      return;
    }
    case 'text': {
      const r = await evaluateTextEncoder({
        dataset,
        seed: numberOption(args, 'seed', 1),
        model: { epochs: numberOption(args, 'epochs', 8), dim: numberOption(args, 'dim', 64) },
        trainFragmentsPerItem: numberOption(args, 'fragments', 24),
        out,
        validation: args.options.get('validation') === 'true',
      });
      process.stdout.write(`${r.summary}

wrote ${out}
`);
      return;
    }
    case 'search': {
      const predictionsOut = args.options.get('predictions-out');
      const r = await evaluateSearch({
        dataset,
        seed: numberOption(args, 'seed', 1),
        out,
        predictionsOut,
        // Measured on crowdflower-search: 3 pseudo-queries per item for 3 epochs in batches of 512 reach
        // the encoder quality of 4 x 4 in batches of 256 in half the time (docs/ml.md).
        encoder: {
          epochs: numberOption(args, 'epochs', 3),
          dim: numberOption(args, 'dim', 64),
          pairsPerItem: numberOption(args, 'pairs-per-item', 3),
          batchSize: numberOption(args, 'batch-size', 512),
        },
        pseudoQueries: numberOption(args, 'pseudo-queries', 2000),
      });
      process.stdout.write(`${r.summary}\n\nwrote ${out}\n${predictionsOut ? `wrote ${predictionsOut}\n` : ''}`);
      return;
    }
    case 'ranker': {
      const r = await evaluateRanker({
        dataset,
        seed: numberOption(args, 'seed', 1),
        out,
        candidates: numberOption(args, 'candidates', 50),
      });
      process.stdout.write(`${r.summary}\n\nwrote ${out}\n`);
      return;
    }
    case 'churn': {
      const r = await evaluateChurn({
        dataset,
        seed: numberOption(args, 'seed', 1),
        out,
        testShare: numberOption(args, 'test-share', 0.3),
      });
      process.stdout.write(`${r.summary}\n\nwrote ${out}\n`);
      return;
    }
    default:
      throw new UsageError(`unknown --model '${model}'`);
  }
}

async function main(argv: string[]): Promise<number> {
  try {
    const args = parseArgs(argv, EVAL_OPTIONS);
    const [command] = args.positional;
    if (command === 'eval') await evalCommand(args);
    else if (command === 'model-keys') {
      const out = option(args, 'out');
      const keys = generateModelKeys();
      writeFileSync(out, keys.privateKeyPem, { mode: 0o600, flag: 'wx' });
      process.stdout.write(`private key written to ${out}\nAISLE_MODEL_PUBLIC_KEY=${keys.publicKey}\n`);
    } else throw new UsageError(command ? `unknown command '${command}'` : 'no command');
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
