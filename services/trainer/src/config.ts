import {
  commonConfig,
  defaultAddress,
  forgetConfig,
  env,
  modelConfig,
  readConfig,
  type ConfigOf,
  type Env,
} from '@aisle/runtime';

export const configSpec = {
  ...commonConfig,
  ...forgetConfig,
  ...modelConfig,
  modelSigningKeyFile: env.optionalString('AISLE_MODEL_SIGNING_KEY_FILE', {
    description:
      'Ed25519 private key (PEM, from a Secret; `pnpm aisle model-keys` makes a pair) that signs every published model; required when AISLE_ENV=production',
  }),
  keepVersions: env.int('AISLE_TRAINER_KEEP_VERSIONS', {
    default: 3,
    min: 1,
    description: 'versions of each model kept in the bucket (older ones are deleted after a publish)',
  }),
  metricsPort: env.int('AISLE_METRICS_PORT', {
    default: -1,
    min: -1,
    max: 65535,
    description: 'Prometheus /metrics port (-1 = off; the trainer is a job)',
  }),
  tenant: env.string('AISLE_TRAINER_TENANT', {
    default: '',
    description:
      'the one (declared) tenant to train; empty: every tenant of AISLE_TENANTS in turn, each on its own events and catalog only',
  }),
  models: env.list('AISLE_TRAINER_MODELS', {
    default: ['sasrec', 'text_encoder', 'ranker', 'churn', 'search_ranker', 'session'],
    allowed: ['sasrec', 'text_encoder', 'ranker', 'churn', 'search_ranker', 'session'],
    description: 'models to train and publish',
  }),
  heldOutShare: env.number('AISLE_TRAINER_HELD_OUT_SHARE', {
    default: 0.1,
    min: 0.01,
    max: 0.5,
    description: 'share of the time range held out to compare the candidate with the active model',
  }),
  churnHorizonDays: env.int('AISLE_TRAINER_CHURN_HORIZON_DAYS', {
    default: 7,
    min: 1,
    description: 'churn label: no activity within this many days',
  }),
  windowDays: env.int('AISLE_TRAINER_WINDOW_DAYS', {
    default: 180,
    min: 1,
    description: 'days of history trained on, counted back from the latest event',
  }),
  maxEvents: env.int('AISLE_TRAINER_MAX_EVENTS', {
    default: 2_000_000,
    min: 1,
    description: "most events trained on (the most recent of the window); bounds the job's memory",
  }),
  minEvents: env.int('AISLE_TRAINER_MIN_EVENTS', {
    default: 500,
    min: 1,
    description: 'fewer events than this: nothing is trained',
  }),
  minHeldOutCases: env.int('AISLE_TRAINER_MIN_HELD_OUT_CASES', {
    default: 30,
    min: 1,
    description: 'a candidate measured on fewer held-out cases than this is not published',
  }),
  tolerance: env.number('AISLE_TRAINER_TOLERANCE', {
    default: 0.005,
    min: 0,
    description: 'a candidate is published unless its held-out metric is more than this below the active one',
  }),
  beatBaseline: env.bool('AISLE_TRAINER_BEAT_BASELINE', {
    default: true,
    description:
      'the sequence model, the ranker and the session model are published only if they also beat item co-visitation on the held-out slice; false only where plumbing, not quality, is under test',
  }),
  sessionBudgetMs: env.duration('AISLE_TRAINER_SESSION_BUDGET', {
    default: 120_000,
    description: "time for choosing the session model's settings on validation sessions (the best so far is kept)",
  }),
  sasrecEpochs: env.int('AISLE_TRAINER_SASREC_EPOCHS', { default: 12, min: 1, description: 'most SASRec epochs' }),
  seed: env.int('AISLE_TRAINER_SEED', { default: 1, description: 'training seed' }),
  experiment: env.optionalString('AISLE_TRAINER_EXPERIMENT', {
    description:
      'instead of publishing the ranker candidate, store it and start an interleaving experiment with this id ' +
      '(the active ranker against the candidate, on Recommend); promote the winner with ExperimentService.Promote',
  }),
  experimentAddr: env.string('AISLE_EXPERIMENT_ADDR', {
    default: defaultAddress('experiment'),
    description: 'experiment service gRPC address (with AISLE_TRAINER_EXPERIMENT)',
  }),
};

export type TrainerConfig = ConfigOf<typeof configSpec>;

export function loadTrainerConfig(source: Env = process.env): TrainerConfig {
  return readConfig(configSpec, source);
}
