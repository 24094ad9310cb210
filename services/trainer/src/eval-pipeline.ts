import {
  coVisitation as projectCoVisitation,
  createSession,
  dropLast,
  evaluate,
  evaluableUsers,
  exportRanker,
  heuristicScore,
  historyAndTarget,
  initBackend,
  mostPop,
  mulberry32,
  publishedFor,
  Ranker,
  RANKER_DIM,
  RANKER_FEATURES,
  rankerRow,
  readDatasetDir,
  sampleNegatives,
  shuffleInPlace,
  tuneCoVisitation,
  type CandidateList,
  type CoVisitationConfig,
  type CoVisitationTrial,
  type Metrics,
  type Protocol,
  type SasrecConfig,
  type SequenceDataset,
} from '@aisle/ml';
import { NO_FILTERS, RankingPipeline, rankerFrom, type PipelinePorts, type RankerPort } from '@aisle/ranking-core';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadAttributes } from './eval-ranker';
import { describe } from './eval-sequence';
import {
  categoriesFromAttributes,
  SasrecRetrieval,
  worldOf,
  worldPorts,
  type World,
  type WorldSplit,
} from './pipeline-world';
import { Progress, table } from './progress';
import { servedSasrecTraining, trainSequenceModel, type SequenceTrainingReport } from './train-sequence';

/** Documented evaluation settings (docs/ml.md), the same for every data set. */
export const PIPELINE_EVAL = {
  /** Share of the validation users whose lists train the ranker; the rest choose its epoch. */
  rankerTrainShare: 0.8,
  rankerEpochs: 12,
  /**
   * Optimizer steps per ranker epoch, at least (lists per batch shrink to give them, 16 to 256): with
   * 256 lists a batch, 8,000 lists made 32 steps an epoch and the ranker was still learning after 12.
   */
  rankerStepsPerEpoch: 250,
  /** Users the co-visitation search scores (full ranking): an evenly spread sample. */
  coVisitationUsers: 10_000,
  /** Candidates asked of the pipeline per user when building ranker lists and for full ranking. */
  listLength: 200,
} as const;

export interface PipelineEvalOptions {
  dataset: string;
  protocol: Protocol;
  seed: number;
  model: Partial<SasrecConfig>;
  /** Seconds for SASRec training (the rest of the command: co-visitation search, ranker, evaluation). */
  trainBudgetSeconds: number;
  /** Default (and `model.loss` unset): the served training rule for the catalog (`servedSasrecTraining`). */
  fineTune?: { epochs: number; learningRate: number } | undefined;
  workers: number;
  out: string;
  predictionsOut?: string | undefined;
  dropLast?: number;
  /** Full ranking: evaluate only this many users, evenly spread (sampled: the protocol's maxUsers). */
  maxUsers?: number | undefined;
}

type Row = { model: string } & Metrics;

export interface PipelineEvalResult {
  dataset: string;
  protocol: Protocol;
  backend: string;
  evaluatedOn: string;
  rows: Row[];
  published: ReturnType<typeof publishedFor>;
  selection: {
    coVisitation: { split: 'validation'; selected: CoVisitationConfig; trials: CoVisitationTrial[] };
    sasrec: { split: 'validation'; criterion: string; bestEpoch: number | undefined };
    ranker: {
      split: 'validation';
      criterion: string;
      trainUsers: number;
      selectionUsers: number;
      epochs: Array<{ epoch: number; loss: number; ndcg10: number }>;
      heuristicNdcg10: number;
      /** The selection lists ordered by their co-visitation feature (popularity breaking ties): a check. */
      coVisitationOrderNdcg10: number;
      batchLists: number;
      selected: { kind: 'learned'; epoch: number } | { kind: 'heuristic' };
    };
  };
  training: SequenceTrainingReport;
  degradedAnswers: number;
  wallSeconds: number;
}

const EVAL_DEADLINES = { deadlineMs: 600_000, dependencyTimeoutMs: 600_000 };

function pipelineOver(ports: PipelinePorts, ranker: RankerPort | undefined): RankingPipeline {
  return new RankingPipeline({ ...ports, ranker }, { tenant: 'eval', deadlines: EVAL_DEADLINES });
}

/** At most `max` of `users`, evenly spread (all of them without a maximum). */
function evenlySpread(users: number[], max: number | undefined): number[] {
  if (!max || users.length <= max) return users;
  const step = Math.ceil(users.length / max);
  return users.filter((_, i) => i % step === 0);
}

/** A 0-based rank from a score map: strictly better items, ties broken as the protocol says. */
function rankIn(
  scores: ReadonlyMap<string, number>,
  target: string,
  others: readonly string[],
  ties: 'half' | 'after',
): number {
  const t = scores.get(target);
  if (t === undefined) return Number.POSITIVE_INFINITY;
  let r = 0;
  for (const o of others) {
    const s = scores.get(o) ?? Number.NEGATIVE_INFINITY;
    if (s > t) r++;
    else if (s === t) r += ties === 'half' ? 0.5 : 0;
  }
  return r;
}

class Accumulator {
  private readonly ranks: number[] = [];
  add(rank: number): void {
    this.ranks.push(rank);
  }
  result(): Metrics {
    const n = Math.max(1, this.ranks.length);
    const sum = (f: (r: number) => number) => this.ranks.reduce((a, r) => a + f(r), 0) / n;
    return {
      hr10: sum((r) => (r < 10 ? 1 : 0)),
      ndcg10: sum((r) => (r < 10 ? 1 / Math.log2(r + 2) : 0)),
      hr20: sum((r) => (r < 20 ? 1 : 0)),
      ndcg20: sum((r) => (r < 20 ? 1 / Math.log2(r + 2) : 0)),
      mrr: sum((r) => (Number.isFinite(r) ? 1 / (r + 1) : 0)),
      users: this.ranks.length,
    };
  }
}

/**
 * Runs the pipeline for `users` of a world and hands each user's scored list to `onList`: full ranking
 * asks Recommend for the top `listLength` (earlier items excluded, as the protocol says); the sampled
 * protocol asks Rank to order the target and its negatives.
 */
async function runPipeline(
  pipeline: RankingPipeline,
  d: SequenceDataset,
  world: World,
  users: readonly number[],
  protocol: Protocol,
  negatives: ReadonlyMap<number, Int32Array> | undefined,
  explain: boolean,
  onList: (
    user: number,
    target: string,
    items: Array<{ itemId: string; score: number; features: Record<string, number> }>,
    candidates: readonly string[],
  ) => void,
): Promise<number> {
  let degraded = 0;
  for (const u of users) {
    const history = world.histories[u] as Int32Array;
    const target = d.itemIds[historyAndTarget(d.sequences[u] as Int32Array, world.split).target] as string;
    const userId = d.users[u] as string;
    if (protocol.kind === 'sampled') {
      const negs = Array.from(negatives?.get(u) ?? [], (i) => d.itemIds[i] as string);
      const r = await pipeline.rank({ userId, itemIds: [target, ...negs], explain });
      if (r.degraded) degraded++;
      onList(u, target, r.items, negs);
    } else {
      const historyIds = Array.from(history, (i) => d.itemIds[i] as string);
      const r = await pipeline.recommend({
        userId,
        limit: PIPELINE_EVAL.listLength,
        filters: { ...NO_FILTERS, excludeItemIds: [...new Set(historyIds)].slice(-1000) },
        context: {},
        explain,
        sessionItemIds: [],
      });
      if (r.degraded) degraded++;
      const seen = new Set(historyIds);
      onList(
        u,
        target,
        r.items.filter((it) => !seen.has(it.itemId)),
        [],
      );
    }
  }
  return degraded;
}

/** Metrics of the pipeline's answers for `users` (and the top items, for --predictions-out). */
async function measure(
  pipeline: RankingPipeline,
  d: SequenceDataset,
  world: World,
  users: readonly number[],
  protocol: Protocol,
  negatives: ReadonlyMap<number, Int32Array> | undefined,
  onTop?: (user: number, items: string[]) => void,
): Promise<{ metrics: Metrics; degraded: number }> {
  const acc = new Accumulator();
  const degraded = await runPipeline(
    pipeline,
    d,
    world,
    users,
    protocol,
    negatives,
    false,
    (u, target, items, negs) => {
      if (protocol.kind === 'sampled') {
        acc.add(rankIn(new Map(items.map((it) => [it.itemId, it.score])), target, negs, 'half'));
        onTop?.(
          u,
          items.map((it) => it.itemId),
        );
      } else {
        const pos = items.findIndex((it) => it.itemId === target);
        acc.add(pos < 0 ? Number.POSITIVE_INFINITY : pos);
        onTop?.(
          u,
          items.slice(0, 50).map((it) => it.itemId),
        );
      }
    },
  );
  return { metrics: acc.result(), degraded };
}

/** The learned ranker as the ranking service runs it: exported to ONNX, scored by onnxruntime. */
async function onnxRanker(
  ranker: Ranker,
  version: string,
): Promise<{ port: RankerPort; release: () => Promise<void> }> {
  const session = await createSession(exportRanker(ranker));
  return {
    port: rankerFrom(version, async (features, rows) => {
      const out = await session.run({
        features: { type: 'float32', data: features.subarray(0, rows * RANKER_DIM), dims: [rows, RANKER_DIM] },
      });
      return out['score']?.data as Float32Array;
    }),
    release: () => session.release(),
  };
}

function ndcgOfLists(lists: readonly CandidateList[], score: (l: CandidateList) => ArrayLike<number>): number {
  let total = 0;
  for (const l of lists) {
    if (l.positive < 0) continue;
    const s = score(l);
    const t = s[l.positive] as number;
    let r = 0;
    for (let i = 0; i < l.rows.length; i++) if (i !== l.positive && (s[i] as number) > t) r++;
    if (r < 10) total += 1 / Math.log2(r + 2);
  }
  return total / Math.max(1, lists.length);
}

/**
 * `aisle eval --model pipeline`: the ranking service's pipeline (ranking-core: candidates, filters,
 * features, ranker, rules) run in-process over a leave-one-out data set, with every setting chosen on the
 * validation split and the test split read once, at the end, for every row of the table.
 */
export async function evaluatePipeline(opts: PipelineEvalOptions): Promise<PipelineEvalResult> {
  const started = performance.now();
  const progress = new Progress();
  const { backend } = await initBackend({ log: (m) => progress.log(m) });
  const d = dropLast(readDatasetDir(opts.dataset), opts.dropLast ?? 0);
  const categories = categoriesFromAttributes(loadAttributes(opts.dataset, d));
  const users = evenlySpread(evaluableUsers(d), opts.protocol.kind === 'full' ? opts.maxUsers : undefined);
  progress.log(
    `data set ${opts.dataset}${opts.dropLast ? ` (last ${opts.dropLast} item(s) dropped: "test" is the validation split)` : ''}: ${d.users.length} users, ${d.itemIds.length - 1} items; protocol ${describe(opts.protocol)}; ${categories.size} items with categories`,
  );
  const sampledUsers = (split: WorldSplit): { users: number[]; negatives: Map<number, Int32Array> | undefined } => {
    if (opts.protocol.kind !== 'sampled') return { users, negatives: undefined };
    const chosen =
      users.length > opts.protocol.maxUsers
        ? shuffleInPlace([...users], mulberry32(opts.protocol.seed)).slice(0, opts.protocol.maxUsers)
        : users;
    // Validation negatives come from another seed than the test's.
    const seed = split === 'test' ? opts.protocol.seed + 1 : opts.protocol.seed + 1001;
    return { users: chosen, negatives: sampleNegatives(d, chosen, opts.protocol.negatives, seed) };
  };

  // 1. Co-visitation settings, on validation (pairs counted on the training parts).
  const covisUsers = evenlySpread(users, PIPELINE_EVAL.coVisitationUsers);
  const covis = await tuneCoVisitation(d, opts.protocol, {
    users: opts.protocol.kind === 'full' ? covisUsers : undefined,
    log: (m) => progress.log(m),
  });
  progress.log(`co-visitation selected on validation: ${JSON.stringify(covis.best)}`);

  // 2. The sequence model, trained as the trainer job trains the served one (unless flags say otherwise):
  // early stopping on validation, fine-tuning budgeted here and run in step 5.
  const rule = servedSasrecTraining(d.itemIds.length - 1);
  const sasrecCfg = { loss: rule.loss, ...opts.model };
  const fineTune = opts.fineTune ?? rule.fineTune;
  const {
    model,
    report: training,
    fineTuneUsers,
  } = await trainSequenceModel(d, {
    protocol: opts.protocol,
    model: sasrecCfg,
    budgetSeconds: opts.trainBudgetSeconds,
    fineTune,
    deferFineTune: true,
    workers: opts.workers,
    progress,
  });

  // 3. Ranker lists from the validation world, with the heuristic ranker (what serves without a model).
  const valid = worldOf(d, 'valid');
  const seqValid = new SasrecRetrieval(model, d.itemIds, 'valid');
  const v = sampledUsers('valid');
  seqValid.prepare(
    v.users.map((u) => valid.histories[u] as Int32Array),
    opts.protocol.kind === 'sampled',
  );
  const validPorts = worldPorts(d, valid, { coVisitation: covis.best, categories, sequence: seqValid }).ports;
  const order = shuffleInPlace([...v.users], mulberry32(opts.seed + 5));
  const cut = Math.round(order.length * PIPELINE_EVAL.rankerTrainShare);
  const trainUsers = new Set(order.slice(0, cut));
  const listsTrain: CandidateList[] = [];
  const listsSelect: CandidateList[] = [];
  let degraded = await runPipeline(
    pipelineOver(validPorts, undefined),
    d,
    valid,
    v.users,
    opts.protocol,
    v.negatives,
    true,
    (u, target, items) => {
      const list = {
        rows: items.map((it) => rankerRow(it.features as Parameters<typeof rankerRow>[0])),
        positive: items.findIndex((it) => it.itemId === target),
      };
      (trainUsers.has(u) ? listsTrain : listsSelect).push(list);
    },
  );
  seqValid.clear();
  const found = (ls: CandidateList[]) => ls.filter((l) => l.positive >= 0).length / Math.max(1, ls.length);
  progress.log(
    `ranker lists: ${listsTrain.length} training, ${listsSelect.length} selection users; target among candidates ${(100 * found(listsTrain)).toFixed(1)}% / ${(100 * found(listsSelect)).toFixed(1)}%`,
  );

  // 4. The ranker: listwise MLP; its epoch (or the heuristic) chosen on the selection users.
  const batchLists = Math.max(16, Math.min(256, Math.floor(listsTrain.length / PIPELINE_EVAL.rankerStepsPerEpoch)));
  const ranker = new Ranker({ seed: opts.seed, epochs: PIPELINE_EVAL.rankerEpochs, batchLists });
  const heuristicNdcg10 = ndcgOfLists(listsSelect, (l) => l.rows.map((r) => heuristicScore(r)));
  // A check, not a choice: the same lists in co-visitation order (its score, then popularity).
  const [covisCol, popCol] = [RANKER_FEATURES.indexOf('covis_score_log'), RANKER_FEATURES.indexOf('popularity_log')];
  const coVisitationOrderNdcg10 = ndcgOfLists(listsSelect, (l) =>
    l.rows.map((r) => 1e3 * (r[covisCol] as number) + (r[popCol] as number)),
  );
  progress.log(
    `ranker lists in co-visitation order (its feature, then popularity): selection NDCG@10 ${coVisitationOrderNdcg10.toFixed(4)}; ${batchLists} lists a batch`,
  );
  const epochs: PipelineEvalResult['selection']['ranker']['epochs'] = [];
  let best: { epoch: number; ndcg10: number; snapshot: ReturnType<Ranker['snapshot']> } | undefined;
  await ranker.fit(listsTrain, (epoch, loss) => {
    const ndcg10 = ndcgOfLists(listsSelect, (l) => ranker.score(l.rows));
    epochs.push({ epoch, loss, ndcg10 });
    progress.log(`ranker epoch ${epoch}: loss ${loss.toFixed(4)}, selection NDCG@10 ${ndcg10.toFixed(4)}`);
    if (!best || ndcg10 > best.ndcg10) best = { epoch, ndcg10, snapshot: ranker.snapshot() };
  });
  const useLearned = best !== undefined && best.ndcg10 > heuristicNdcg10;
  if (best) ranker.restore(best.snapshot);
  progress.log(
    `ranker selected on validation: ${useLearned ? `learned, epoch ${best?.epoch}` : 'the heuristic'} (heuristic NDCG@10 ${heuristicNdcg10.toFixed(4)})`,
  );

  // 5. Optional fine-tuning on the validation items (after the validation world is no longer needed).
  if (fineTune && fineTune.epochs > 0) {
    progress.log(`fine-tuning SASRec ${fineTune.epochs} epoch(s) at lr ${fineTune.learningRate}`);
    const losses = await model.fineTuneWithValidation(d, {
      ...fineTune,
      workers: opts.workers,
      onStep: (r) => progress.step(r),
      // The users SASRec was trained on (all of them unless the subsampling rule applied).
      ...(fineTuneUsers ? { users: fineTuneUsers } : {}),
    });
    training.fineTune = { ...fineTune, losses };
  }

  // 6. Test, read once: every row from the test world.
  const test = worldOf(d, 'test');
  const t = sampledUsers('test');
  const seqTest = new SasrecRetrieval(model, d.itemIds, 'test');
  seqTest.prepare(
    t.users.map((u) => test.histories[u] as Int32Array),
    opts.protocol.kind === 'sampled',
  );
  const rows: Row[] = [];
  const evalOpts = {
    split: 'test' as const,
    protocol: opts.protocol,
    ...(opts.protocol.kind === 'full' && opts.maxUsers ? { users } : {}),
  };
  for (const scorer of [mostPop(d, 'all'), mostPop(d, 'train'), projectCoVisitation(d)])
    rows.push({ model: scorer.name, ...(await evaluate(scorer, d, evalOpts)) });
  const testPorts = worldPorts(d, test, { coVisitation: covis.best, categories, sequence: seqTest });
  rows.push({
    model: 'CoVisitation (windowed, chosen on validation)',
    ...(await evaluate(testPorts.coVisitation, d, evalOpts)),
  });
  rows.push({ model: `SASRec alone (epoch ${training.bestEpoch ?? '-'})`, ...(await evaluate(model, d, evalOpts)) });
  const learned = useLearned ? await onnxRanker(ranker, `eval-${opts.seed}`) : undefined;
  const rankerName = useLearned ? 'learned ranker' : 'heuristic ranker';
  const variants: Array<[string, ReadonlySet<'sequence' | 'co_visit' | 'popularity'>]> = [
    ['co-visitation candidates only', new Set(['sequence', 'popularity'])],
    ['SASRec candidates only', new Set(['co_visit', 'popularity'])],
  ];
  for (const [label, without] of variants) {
    const ports = worldPorts(d, test, { coVisitation: covis.best, categories, sequence: seqTest, without }).ports;
    const r = await measure(pipelineOver(ports, learned?.port), d, test, t.users, opts.protocol, t.negatives);
    degraded += r.degraded;
    rows.push({ model: `${rankerName} over ${label}`, ...r.metrics });
    progress.log(`test ${label}: NDCG@10 ${r.metrics.ndcg10.toFixed(4)}`);
  }
  let predictions: ReturnType<typeof createWriteStream> | undefined;
  if (opts.predictionsOut) {
    mkdirSync(dirname(opts.predictionsOut), { recursive: true });
    predictions = createWriteStream(opts.predictionsOut);
  }
  const served = await measure(
    pipelineOver(testPorts.ports, learned?.port),
    d,
    test,
    t.users,
    opts.protocol,
    t.negatives,
    (u, items) => predictions?.write(JSON.stringify({ user: d.users[u], items }) + '\n'),
  );
  degraded += served.degraded;
  if (predictions) await new Promise<void>((r) => predictions?.end(() => r()));
  rows.push({ model: `Pipeline (ours: all sources + ${rankerName})`, ...served.metrics });
  await learned?.release();
  ranker.dispose();
  model.dispose();

  const result: PipelineEvalResult = {
    dataset: opts.dataset,
    protocol: opts.protocol,
    backend,
    evaluatedOn: opts.dropLast ? `validation (each user's last ${opts.dropLast} item(s) dropped)` : 'test',
    rows,
    published: opts.dropLast
      ? []
      : publishedFor(opts.dataset).filter(
          (p) => p.protocol === (opts.protocol.kind === 'full' ? 'full' : 'sampled100'),
        ),
    selection: {
      coVisitation: { split: 'validation', selected: covis.best, trials: covis.trials },
      sasrec: { split: 'validation', criterion: 'NDCG@10 (early stopping)', bestEpoch: training.bestEpoch },
      ranker: {
        split: 'validation',
        criterion: 'NDCG@10 of the pipeline lists of held-out validation users',
        trainUsers: listsTrain.length,
        selectionUsers: listsSelect.length,
        epochs,
        heuristicNdcg10,
        coVisitationOrderNdcg10,
        batchLists,
        selected: useLearned && best ? { kind: 'learned', epoch: best.epoch } : { kind: 'heuristic' },
      },
    },
    training,
    degradedAnswers: degraded,
    wallSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(result, null, 2));
  return result;
}

export function formatPipelineResult(r: PipelineEvalResult): string {
  const fmt = (x: number | undefined) => (x === undefined ? '-' : x);
  return [
    `${r.dataset} (${describe(r.protocol)}), backend ${r.backend}, evaluated on ${r.evaluatedOn}`,
    table([
      ...r.rows.map((row) => ({
        model: row.model,
        'HR@10': row.hr10,
        'NDCG@10': row.ndcg10,
        'HR@20': row.hr20,
        'NDCG@20': row.ndcg20,
        MRR: row.mrr,
        source: 'this run',
      })),
      ...r.published.map((p) => ({
        model: p.model,
        'HR@10': fmt(p.hr10),
        'NDCG@10': fmt(p.ndcg10),
        'HR@20': fmt(p.hr20),
        'NDCG@20': fmt(p.ndcg20),
        MRR: '-',
        source: `published: ${p.source}`,
      })),
    ]),
    `chosen on validation: co-visitation ${JSON.stringify(r.selection.coVisitation.selected)}; SASRec epoch ${r.selection.sasrec.bestEpoch ?? '-'}; ranker ${r.selection.ranker.selected.kind === 'learned' ? `learned, epoch ${r.selection.ranker.selected.epoch}` : 'heuristic'}`,
    `training ${r.training.seconds.toFixed(0)} s${r.training.subsample ? ` on ${r.training.subsample.users} of ${r.training.subsample.of} users (${r.training.subsample.reason})` : ''}; degraded answers ${r.degradedAnswers}; whole command ${r.wallSeconds.toFixed(0)} s`,
  ].join('\n');
}
