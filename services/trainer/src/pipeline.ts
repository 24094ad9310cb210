import type { Event, Item } from '@aisle/contracts';
import {
  CHURN_FEATURES,
  churnFeatures,
  ChurnClassifier,
  coVisitation,
  createSession,
  DEFAULT_CO_VISITATION,
  DEFAULT_SESSION_MODEL,
  internSessions,
  mulberry32,
  ServingSessionModel,
  sessionArtifactFromSidecar,
  sessionArtifactSidecar,
  sessionMetricsOfRanks,
  sessionsFromEvents,
  shuffleInPlace,
  tuneSessionModel,
  validationSplit,
  WindowedCoVisitation,
  type SessionModelSpec,
  encoderPairs,
  exportChurn,
  exportRanker,
  exportSasrec,
  exportTextEncoder,
  fromEvents,
  hashBatch,
  itemText,
  RANKER_FEATURES,
  Ranker,
  rankerFeatures,
  rocAuc,
  sasrecFeeds,
  sasrecResults,
  Sasrec,
  TextEncoder2T,
  topItems,
  words,
  type ActivitySummary,
  type CandidateList,
  type OrtSession,
  type SasrecConfig,
  type SemanticRetriever,
  SEMANTIC_NEIGHBOURS,
  topKInnerProduct,
  type TextEncoderConfig,
} from '@aisle/ml';
import { searchFeedback } from './search-feedback';
import { scoreSearchModel, searchDocs, trainSearchModel } from './search-model';
import { servedSasrecTraining } from './train-sequence';

/**
 * The trainer's domain: from a shop's events and catalog to trained candidate models (ONNX + sidecar)
 * and a held-out time slice on which any version of a model (candidate or active) can be scored the
 * same way, through onnxruntime.
 */

/** What the trainer reads of an event (its type as the stored string). */
export type ShopEvent = Pick<
  Event,
  'userId' | 'sessionId' | 'itemId' | 'query' | 'quantity' | 'price' | 'occurredAt'
> & {
  type: string;
  /** The ranking response this interaction followed (joins searches with their clicks). */
  requestId?: string | undefined;
};

export type ShopItem = Pick<Item, 'itemId' | 'title' | 'category' | 'brand' | 'price'> &
  Partial<Pick<Item, 'description'>>;

export type ModelName = 'sasrec' | 'text_encoder' | 'ranker' | 'churn' | 'search_ranker' | 'session';
export const MODEL_NAMES: readonly ModelName[] = [
  'sasrec',
  'text_encoder',
  'ranker',
  'churn',
  'search_ranker',
  'session',
];

export interface Candidate {
  name: ModelName;
  onnx: Uint8Array;
  sidecar: Record<string, unknown>;
  signature: {
    inputs: Array<{ name: string; dtype: string; shape: number[] }>;
    outputs: Array<{ name: string; dtype: string; shape: number[] }>;
  };
  /** Series recorded while training (loss per epoch, validation metrics), published with the version. */
  curves: Array<{ name: string; values: number[] }>;
}

export interface TrainingOptions {
  /** The models wanted (default: all); the sequence model is trained for the ranker too. */
  models?: readonly ModelName[];
  heldOutShare: number;
  churnHorizonDays: number;
  sasrec: Partial<SasrecConfig>;
  text: Partial<TextEncoderConfig>;
  rankerEpochs: number;
  /** Pseudo-queries from the catalog for the search ranker. */
  searchPseudoQueries?: number;
  /** Milliseconds for choosing the session model's settings on validation sessions. */
  sessionBudgetMs?: number;
  seed: number;
  log: (msg: string) => void;
}

const DAY = 86_400_000;
const ITEM_TYPES = new Set(['view', 'add_to_cart', 'purchase']);

/** Everything the held-out evaluation needs, fixed before any model is trained. */
export interface HeldOut {
  sliceStart: number;
  end: number;
  /** Next-item cases: history before the slice (item ids, oldest first) and the first item in it. */
  nextItem: Array<{ userId: string; history: string[]; target: string }>;
  /** (query, item) pairs observed in the slice: a search followed by a view in the same session. */
  queries: Array<{ query: string; itemId: string }>;
  /** The slice's events, for the search model's held-out queries (searches joined with what followed). */
  sliceEvents: ShopEvent[];
  churn: { cutoff: number; users: string[]; X: Float32Array[]; y: number[] };
  /** Session cases: every prefix of the slice's sessions and the item that followed it. */
  sessions: Array<{ prefix: string[]; target: string }>;
  items: ShopItem[];
}

/** The most held-out session cases scored (the first ones of the slice). */
export const MAX_HELD_OUT_SESSION_CASES = 10_000;

function sortByTime(events: readonly ShopEvent[]): ShopEvent[] {
  return [...events].sort((a, b) => a.occurredAt - b.occurredAt);
}

/**
 * Where the data really starts: the event time below which only the earliest 1% of events lie (of
 * time-sorted events). One accepted event with a wrong clock (2000-01-01, say) would otherwise stretch
 * the time range, and with it the held-out window and the churn cut-offs, by decades.
 */
export function robustStart(sorted: readonly ShopEvent[]): number {
  return (sorted[Math.floor(sorted.length * 0.01)] as ShopEvent).occurredAt;
}

/** Fewer (user, cut-off) rows than this, or one label only: the churn classifier is not trained. */
export const MIN_CHURN_TRAINING_ROWS = 20;

function searchPairs(events: readonly ShopEvent[]): Array<{ query: string; itemId: string }> {
  const out: Array<{ query: string; itemId: string }> = [];
  const lastSearch = new Map<string, { query: string; at: number }>();
  for (const e of events) {
    const key = `${e.userId}\u001f${e.sessionId}`;
    if (e.type === 'search') lastSearch.set(key, { query: e.query, at: e.occurredAt });
    else if ((e.type === 'view' || e.type === 'click') && e.itemId) {
      const s = lastSearch.get(key);
      if (s && e.occurredAt - s.at <= 10 * 60_000) {
        out.push({ query: s.query, itemId: e.itemId });
        lastSearch.delete(key);
      }
    }
  }
  return out;
}

export function activitySummary(events: readonly ShopEvent[]): ActivitySummary | undefined {
  if (events.length === 0) return undefined;
  const purchases = events.filter((e) => e.type === 'purchase');
  return {
    firstAt: (events[0] as ShopEvent).occurredAt,
    lastAt: (events[events.length - 1] as ShopEvent).occurredAt,
    visits: new Set(events.map((e) => e.sessionId || String(Math.floor(e.occurredAt / DAY)))).size,
    events: events.length,
    purchases: purchases.length,
    spend: purchases.reduce((a, p) => a + p.price * Math.max(1, p.quantity), 0),
    recentEvents: events.map((e) => e.occurredAt),
    recentPurchases: purchases.map((p) => ({ at: p.occurredAt, amount: p.price * Math.max(1, p.quantity) })),
  };
}

/** Churn rows: features from events before `cutoff`, label = no event in [cutoff, cutoff + horizon). */
export function churnRows(
  byUser: ReadonlyMap<string, ShopEvent[]>,
  cutoff: number,
  horizonMs: number,
): { users: string[]; X: Float32Array[]; y: number[] } {
  const users: string[] = [];
  const X: Float32Array[] = [];
  const y: number[] = [];
  for (const [u, evs] of byUser) {
    const s = activitySummary(evs.filter((e) => e.occurredAt < cutoff));
    if (!s) continue;
    users.push(u);
    X.push(churnFeatures(s, cutoff));
    y.push(evs.some((e) => e.occurredAt >= cutoff && e.occurredAt < cutoff + horizonMs) ? 0 : 1);
  }
  return { users, X, y };
}

export function heldOutSlice(
  eventsIn: readonly ShopEvent[],
  items: readonly ShopItem[],
  opts: Pick<TrainingOptions, 'heldOutShare' | 'churnHorizonDays'>,
): HeldOut {
  const events = sortByTime(eventsIn);
  const start = robustStart(events);
  const end = (events[events.length - 1] as ShopEvent).occurredAt + 1;
  const sliceStart = end - (end - start) * opts.heldOutShare;
  const byUser = new Map<string, ShopEvent[]>();
  for (const e of events) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
  const nextItem: HeldOut['nextItem'] = [];
  for (const [userId, evs] of byUser) {
    const before = evs
      .filter((e) => e.occurredAt < sliceStart && ITEM_TYPES.has(e.type) && e.itemId)
      .map((e) => e.itemId);
    const first = evs.find((e) => e.occurredAt >= sliceStart && ITEM_TYPES.has(e.type) && e.itemId);
    if (before.length >= 2 && first) nextItem.push({ userId, history: before, target: first.itemId });
  }
  const horizon = opts.churnHorizonDays * DAY;
  const cutoff = end - horizon;
  return {
    sliceStart,
    end,
    nextItem,
    queries: searchPairs(events.filter((e) => e.occurredAt >= sliceStart)),
    sliceEvents: events.filter((e) => e.occurredAt >= sliceStart),
    churn: { cutoff, ...churnRows(byUser, cutoff, horizon) },
    sessions: sessionsFromEvents(events.filter((e) => e.occurredAt >= sliceStart))
      .flatMap((s) => s.slice(1).map((target, k) => ({ prefix: s.slice(0, k + 1), target })))
      .slice(0, MAX_HELD_OUT_SESSION_CASES),
    items: [...items],
  };
}

function io(name: string, dtype: string, shape: number[]) {
  return { name, dtype, shape };
}

/** A model that could not be trained at all, and why. */
export interface Untrained {
  name: ModelName;
  reason: string;
}

/**
 * Trains the wanted models on events before the held-out slice (and the sequence model when the ranker
 * is wanted); says why when one cannot be trained.
 */
export async function trainCandidates(
  eventsIn: readonly ShopEvent[],
  items: readonly ShopItem[],
  heldOut: HeldOut,
  opts: TrainingOptions,
): Promise<{ candidates: Candidate[]; untrained: Untrained[] }> {
  const wanted = new Set(opts.models ?? MODEL_NAMES);
  const candidates: Candidate[] = [];
  const untrained: Untrained[] = [];
  if (wanted.has('sasrec') || wanted.has('text_encoder') || wanted.has('ranker') || wanted.has('search_ranker'))
    candidates.push(...(await trainRecommenders(eventsIn, items, heldOut, opts, wanted)));
  if (wanted.has('churn')) {
    const churn = await trainChurn(eventsIn, heldOut, opts);
    if ('reason' in churn) untrained.push(churn);
    else candidates.push(churn);
  }
  if (wanted.has('session')) {
    const session = trainSessionModel(eventsIn, heldOut, opts);
    if ('reason' in session) untrained.push(session);
    else candidates.push(session);
  }
  return { candidates, untrained };
}

/** Fewer training sessions (of two items or more) than this: no session model is trained. */
export const MIN_SESSIONS = 20;
/** The session model serves from the most recent training sessions, at most this many. */
export const MAX_SERVED_SESSIONS = 500_000;
/** Validation cases scored per setting (a seeded sample), and fewer than the minimum: the defaults, unsearched. */
const SESSION_VALIDATION_CASES = 5_000;
const MIN_SESSION_VALIDATION_CASES = 30;

/**
 * The session model for anonymous traffic, chosen the way `aisle eval --protocol sessions` chooses it:
 * the settings searched on the latest 10% of training sessions (models fit on the earlier ones), then
 * the chosen model stored with the most recent training sessions, from which the ranking service
 * rebuilds the very same scorer (`ServingSessionModel`). Rules and counts, no graph: the artifact is
 * the sidecar.
 */
export function trainSessionModel(
  eventsIn: readonly ShopEvent[],
  heldOut: HeldOut,
  opts: TrainingOptions,
): Candidate | Untrained {
  const log = opts.log;
  const raw = sessionsFromEvents(eventsIn.filter((e) => e.occurredAt < heldOut.sliceStart));
  if (raw.length < MIN_SESSIONS)
    return {
      name: 'session',
      reason: `not trained: ${raw.length} sessions of two items or more before the held-out slice (needs ${MIN_SESSIONS})`,
    };
  const { itemIds, sessions } = internSessions(raw.slice(-MAX_SERVED_SESSIONS));
  const numItems = itemIds.length - 1;
  const split = validationSplit(sessions, 0.1);
  const cases = shuffleInPlace([...split.cases], mulberry32(opts.seed)).slice(0, SESSION_VALIDATION_CASES);
  let spec: SessionModelSpec = DEFAULT_SESSION_MODEL;
  const curves: Candidate['curves'] = [];
  if (cases.length >= MIN_SESSION_VALIDATION_CASES) {
    const tuned = tuneSessionModel(split.fit, cases, numItems, {
      deadline: Date.now() + (opts.sessionBudgetMs ?? 120_000),
      log: (m) => log(`session model ${m}`),
    });
    spec = tuned.best;
    curves.push(
      { name: 'validation_p20_per_trial', values: tuned.trials.map((t) => t.validation.p20) },
      { name: 'validation_mrr20_per_trial', values: tuned.trials.map((t) => t.validation.mrr20) },
    );
  } else log(`session model: ${cases.length} validation cases, too few to choose by; the default settings`);
  log(`session model: ${sessions.length} sessions, ${numItems} items, settings ${JSON.stringify(spec)}`);
  return {
    name: 'session',
    onnx: new Uint8Array(0),
    sidecar: sessionArtifactSidecar({ spec, itemIds, sessions }),
    curves,
    signature: {
      inputs: [io('session_item_ids', 'string', [-1])],
      outputs: [io('items', 'string', [-1]), io('scores', 'float32', [-1])],
    },
  };
}

async function trainRecommenders(
  eventsIn: readonly ShopEvent[],
  items: readonly ShopItem[],
  heldOut: HeldOut,
  opts: TrainingOptions,
  wanted: ReadonlySet<ModelName>,
): Promise<Candidate[]> {
  const events = sortByTime(eventsIn).filter((e) => e.occurredAt < heldOut.sliceStart);
  const candidates: Candidate[] = [];
  const itemById = new Map(items.map((i) => [i.itemId, i]));

  // Sequence model.
  const sequences = fromEvents('shop', events);
  // The served training rule, the one `aisle eval --model pipeline` measures (docs/ml.md).
  const rule = servedSasrecTraining(sequences.itemIds.length - 1);
  const sasrec = new Sasrec(sequences.itemIds.length - 1, {
    dim: 32,
    layers: 2,
    heads: 2,
    ffn: 32,
    maxLen: 50,
    epochs: 12,
    dropout: 0.2,
    learningRate: 5e-3,
    patience: 3,
    validationUsers: 1000,
    seed: opts.seed,
    loss: rule.loss,
    ...opts.sasrec,
  });
  const fit = await sasrec.fit(sequences, {
    onEpoch: (r) =>
      opts.log(
        `sasrec epoch ${r.epoch}: loss ${r.loss.toFixed(3)}, validation NDCG@10 ${r.validation.ndcg10.toFixed(4)}`,
      ),
  });
  // The ranker learns its lists (targets: each user's last pre-slice item) with the early-stopped model, the
  // order `aisle eval --model pipeline` measures; then the fine-tuning trains SASRec on each user's
  // validation item (the one before), which served histories end with.
  const ranker = wanted.has('ranker') ? await trainRanker(events, sequences, sasrec, itemById, opts) : undefined;
  const fineTuneLosses =
    rule.fineTune.epochs > 0 && fit.best !== undefined
      ? await sasrec.fineTuneWithValidation(sequences, rule.fineTune)
      : [];
  if (fineTuneLosses.length > 0)
    opts.log(
      `sasrec fine-tuned ${fineTuneLosses.length} epoch(s): loss ${fineTuneLosses.map((l) => l.toFixed(3)).join(', ')}`,
    );
  candidates.push({
    name: 'sasrec',
    onnx: exportSasrec(sasrec),
    sidecar: {
      itemIds: sequences.itemIds,
      maxLen: sasrec.cfg.maxLen,
      dim: sasrec.cfg.dim,
      bestEpoch: fit.best?.epoch ?? 0,
      // Which branch of the served rule trained this version (docs/ml.md), for whoever reads the registry.
      training: { loss: sasrec.cfg.loss, fineTuneEpochs: fineTuneLosses.length },
    },
    curves: [
      { name: 'loss', values: fit.history.map((r) => r.loss) },
      { name: 'validation_ndcg10', values: fit.history.map((r) => r.validation.ndcg10) },
      ...(fineTuneLosses.length > 0 ? [{ name: 'fine_tune_loss', values: fineTuneLosses }] : []),
    ],
    signature: {
      inputs: [io('item_ids', 'int64', [-1, -1]), io('exclude_ids', 'int64', [-1, -1]), io('k', 'int64', [1])],
      outputs: [
        io('user_embedding', 'float32', [-1, sasrec.cfg.dim]),
        io('scores', 'float32', [-1, -1]),
        io('items', 'int64', [-1, -1]),
      ],
    },
  });

  // Text encoder, and the search ranker whose semantic part it is.
  if (wanted.has('text_encoder') || wanted.has('search_ranker'))
    candidates.push(...(await trainTextAndSearch(events, items, opts, wanted)));

  // Ranker (trained above): lists from each user's last pre-slice interaction, candidates from the sequence
  // model and co-visitation.
  if (ranker) candidates.push(ranker);
  sasrec.dispose();
  // The sequence model comes back even when only the ranker is wanted: the ranker is scored on its lists.
  return candidates;
}

async function trainTextAndSearch(
  events: readonly ShopEvent[],
  items: readonly ShopItem[],
  opts: TrainingOptions,
  wanted: ReadonlySet<ModelName>,
): Promise<Candidate[]> {
  // The catalog's pseudo-queries plus the queries shoppers chose items after (the same pairs
  // `aisle eval --model search` trains it on).
  const pairs = encoderPairs(searchDocs(items), { perItem: 8, seed: opts.seed, feedback: searchFeedback(events) });
  const text = new TextEncoder2T({ dim: 32, epochs: 6, seed: opts.seed, ...opts.text });
  const textLoss: number[] = [];
  await text.fit(pairs, {
    onEpoch: (e, loss) => {
      textLoss.push(loss);
      opts.log(`text encoder epoch ${e}: loss ${loss.toFixed(3)}`);
    },
  });
  const candidate: Candidate = {
    name: 'text_encoder',
    onnx: exportTextEncoder(text),
    sidecar: { hasher: text.cfg.hasher, dim: text.cfg.dim },
    curves: [{ name: 'loss', values: textLoss }],
    signature: {
      inputs: [io('token_ids', 'int64', [-1, -1])],
      outputs: [
        io('query_embedding', 'float32', [-1, text.cfg.dim]),
        io('item_embedding', 'float32', [-1, text.cfg.dim]),
      ],
    },
  };
  const out: Candidate[] = wanted.has('text_encoder') ? [candidate] : [];
  if (wanted.has('search_ranker')) {
    // Learned over the search engine's features, with the new encoder as its semantic part.
    const search = await trainSearchModel(events, items, text, {
      seed: opts.seed,
      pseudoQueries: opts.searchPseudoQueries ?? 1000,
      log: opts.log,
    });
    out.push({
      name: 'search_ranker',
      onnx: search.onnx,
      sidecar: { ...search.sidecar },
      curves: [],
      signature: {
        inputs: [io('features', 'float32', [-1, search.sidecar.features.length])],
        outputs: [io('score', 'float32', [-1, 1]), io('parts', 'float32', [-1, search.sidecar.features.length])],
      },
    });
  }
  text.dispose();
  return out;
}

async function trainRanker(
  events: readonly ShopEvent[],
  sequences: ReturnType<typeof fromEvents>,
  sasrec: Sasrec,
  itemById: ReadonlyMap<string, ShopItem>,
  opts: TrainingOptions,
): Promise<Candidate> {
  const stats = itemStats(events);
  const covis = coVisitation(sequences);
  const lists: CandidateList[] = [];
  sequences.sequences.forEach((seq) => {
    if (seq.length < 3) return;
    const history = seq.subarray(0, seq.length - 1);
    const target = seq[seq.length - 1] as number;
    const ids = (i: number) => sequences.itemIds[i] as string;
    const built = candidateRows(
      Array.from(history, ids),
      sasrec.scoreBatch([history])[0] as Float32Array,
      covis.scoreBatch([history])[0] as Float32Array,
      sequences.itemIds,
      itemById,
      stats,
    );
    lists.push({ rows: built.rows, positive: built.items.indexOf(ids(target)) });
  });
  const ranker = new Ranker({ seed: opts.seed, epochs: opts.rankerEpochs });
  const rankerLoss: number[] = [];
  await ranker.fit(lists, (e, loss) => {
    rankerLoss.push(loss);
    opts.log(`ranker epoch ${e}: listwise loss ${loss.toFixed(4)}`);
  });
  const candidate: Candidate = {
    name: 'ranker',
    onnx: exportRanker(ranker),
    sidecar: { features: RANKER_FEATURES },
    curves: [{ name: 'listwise_loss', values: rankerLoss }],
    signature: {
      inputs: [io('features', 'float32', [-1, RANKER_FEATURES.length])],
      outputs: [io('score', 'float32', [-1, 1])],
    },
  };
  ranker.dispose();
  return candidate;
}

/**
 * Churn: rolling cut-offs, weekly, from one horizon before the evaluation cut-off back to two weeks
 * after the data starts, so that the model sees users at every stage (new, active, fading, gone).
 * With less history than that there are no labelled rows: nothing is trained (a fit on zero rows
 * gives NaN weights), and the reason says how much history there is.
 */
async function trainChurn(
  eventsIn: readonly ShopEvent[],
  heldOut: HeldOut,
  opts: TrainingOptions,
): Promise<Candidate | Untrained> {
  const horizon = opts.churnHorizonDays * DAY;
  const sorted = sortByTime(eventsIn);
  const byUser = new Map<string, ShopEvent[]>();
  for (const e of sorted) byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), e]);
  const firstAt = robustStart(sorted);
  const trainRows = { X: [] as Float32Array[], y: [] as number[] };
  for (let cutoff = heldOut.churn.cutoff - horizon; cutoff >= firstAt + 14 * DAY; cutoff -= 7 * DAY) {
    const rows = churnRows(byUser, cutoff, horizon);
    trainRows.X.push(...rows.X);
    trainRows.y.push(...rows.y);
  }
  const churned = trainRows.y.filter(Boolean).length;
  opts.log(`churn: ${trainRows.X.length} (user, cut-off) rows, ${churned} churned`);
  if (trainRows.X.length < MIN_CHURN_TRAINING_ROWS || churned === 0 || churned === trainRows.X.length) {
    const days = ((heldOut.end - firstAt) / DAY).toFixed(1);
    return {
      name: 'churn',
      reason:
        `not trained: ${trainRows.X.length} labelled (user, cut-off) rows, ${churned} churned (needs at least ` +
        `${MIN_CHURN_TRAINING_ROWS} and both labels); ${days} days of history, and labels need the ` +
        `${opts.churnHorizonDays}-day horizon twice plus 14 days`,
    };
  }
  const churn = new ChurnClassifier();
  const churnLoss: number[] = [];
  await churn.fit(trainRows.X, trainRows.y, { onLoss: (_, loss) => churnLoss.push(loss), every: 25 });
  return {
    name: 'churn',
    onnx: exportChurn(churn),
    sidecar: { features: CHURN_FEATURES, threshold: churn.threshold, horizonDays: opts.churnHorizonDays },
    curves: [{ name: 'loss_every_25_iterations', values: churnLoss }],
    signature: {
      inputs: [io('features', 'float32', [-1, CHURN_FEATURES.length])],
      outputs: [io('risk', 'float32', [-1, 1]), io('contributions', 'float32', [-1, CHURN_FEATURES.length])],
    },
  };
}

export interface ItemStats {
  popularity: Map<string, number>;
  ctr: Map<string, number>;
  conversion: Map<string, number>;
}

/** Offline counterparts of the feature service's item features. */
export function itemStats(events: readonly ShopEvent[]): ItemStats {
  const views = new Map<string, number>();
  const clicks = new Map<string, number>();
  const purchases = new Map<string, number>();
  const popularity = new Map<string, number>();
  const inc = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  for (const e of events) {
    if (!e.itemId) continue;
    if (e.type !== 'remove_from_cart') inc(popularity, e.itemId);
    if (e.type === 'view') inc(views, e.itemId);
    if (e.type === 'click') inc(clicks, e.itemId);
    if (e.type === 'purchase') inc(purchases, e.itemId);
  }
  const ctr = new Map<string, number>();
  const conversion = new Map<string, number>();
  for (const [id, v] of views) {
    ctr.set(id, ((clicks.get(id) ?? 0) + 1) / (v + 20));
    conversion.set(id, ((purchases.get(id) ?? 0) + 0.5) / (v + 50));
  }
  return { popularity, ctr, conversion };
}

/** Candidates (top 30 of the sequence model and of co-visitation) with their ranker features. */
export function candidateRows(
  history: readonly string[],
  seqScores: Float32Array,
  covisScores: Float32Array,
  itemIds: readonly string[],
  catalog: ReadonlyMap<string, ShopItem>,
  stats: ItemStats,
): { items: string[]; rows: Float32Array[] } {
  const none = new Int32Array(0);
  const seqTop = topItems(seqScores, 30, none);
  const covisTop = topItems(covisScores, 30, none);
  const order = [...new Set([...seqTop, ...covisTop])];
  const categories = new Map<string, number>();
  for (const h of history) {
    const c = catalog.get(h)?.category;
    if (c) categories.set(c, (categories.get(c) ?? 0) + 1);
  }
  const maxCat = Math.max(1, ...categories.values());
  const prices = history.map((h) => catalog.get(h)?.price ?? 0).filter((p) => p > 0);
  const mean = prices.reduce((a, p) => a + p, 0) / Math.max(1, prices.length);
  const std = Math.sqrt(prices.reduce((a, p) => a + (p - mean) ** 2, 0) / Math.max(1, prices.length));
  const lastCategory = catalog.get(history[history.length - 1] ?? '')?.category;
  const items = order.map((i) => itemIds[i] as string);
  const rows = order.map((i, k) => {
    const id = items[k] as string;
    const it = catalog.get(id);
    return rankerFeatures({
      seqScore: seqScores[i],
      seqRank: seqTop.indexOf(i) >= 0 ? seqTop.indexOf(i) : undefined,
      covisScore: covisScores[i],
      covisRank: covisTop.indexOf(i) >= 0 ? covisTop.indexOf(i) : undefined,
      popularity: stats.popularity.get(id),
      ctr: stats.ctr.get(id),
      conversionRate: stats.conversion.get(id),
      categoryAffinity: it ? (categories.get(it.category) ?? 0) / maxCat : 0,
      price: it?.price,
      userPriceMean: prices.length ? mean : undefined,
      userPriceStd: prices.length ? std : undefined,
      historyLength: history.length,
      sameCategoryAsLast: it !== undefined && it.category === lastCategory,
    });
  });
  return { items, rows };
}

const ndcgOf = (rank: number) => (rank >= 0 && rank < 10 ? 1 / Math.log2(rank + 2) : 0);

/**
 * Scores one version of a model on the held-out slice through onnxruntime: the primary metric that
 * decides publication (NDCG@10 next item; MRR of query -> item; ranker NDCG@10 over the candidate
 * sequence model's lists; churn ROC AUC; search NDCG@10 of the slice's searches, with the candidate
 * text encoder's neighbours when one is given).
 */
export async function scoreOnHeldOut(
  name: ModelName,
  artifact: { onnx: Uint8Array; sidecar: Record<string, unknown> },
  heldOut: HeldOut,
  context: {
    sasrec: { onnx: Uint8Array; sidecar: Record<string, unknown> } | undefined;
    trainEvents: readonly ShopEvent[];
    text?: { onnx: Uint8Array; sidecar: Record<string, unknown> } | undefined;
    seed?: number;
  },
): Promise<{ metric: string; value: number; cases: number }> {
  if (name === 'session') {
    const model = new ServingSessionModel(sessionArtifactFromSidecar(artifact.sidecar));
    return sessionScore(heldOut, (prefix) => model.recommend(prefix, 20).map((r) => r.itemId));
  }
  if (name === 'search_ranker') {
    const semantic = context.text ? await ortRetriever(context.text, heldOut.items) : undefined;
    try {
      const r = await scoreSearchModel(artifact, heldOut.sliceEvents, heldOut.items, {
        semantic: semantic?.retrieve,
        seed: context.seed ?? 1,
      });
      return { metric: 'ndcg@10', ...r };
    } finally {
      await semantic?.release();
    }
  }
  const session = await createSession(artifact.onnx);
  try {
    switch (name) {
      case 'sasrec': {
        const cases = heldOut.nextItem;
        const ranks = await sasrecTopK(
          session,
          artifact.sidecar,
          cases.map((c) => c.history),
          10,
        );
        const value =
          cases.reduce((a, c, k) => a + ndcgOf((ranks[k] as string[]).indexOf(c.target)), 0) /
          Math.max(1, cases.length);
        return { metric: 'ndcg@10', value, cases: cases.length };
      }
      case 'text_encoder': {
        const pairs =
          heldOut.queries.length >= 20
            ? heldOut.queries
            : heldOut.items.map((i) => ({ query: words(i.title).slice(-2).join(' '), itemId: i.itemId }));
        const itemsEmb = await encodeTexts(session, artifact.sidecar, heldOut.items.map(itemText), 'item_embedding');
        const queriesEmb = await encodeTexts(
          session,
          artifact.sidecar,
          pairs.map((p) => p.query),
          'query_embedding',
        );
        const dim = itemsEmb.length / heldOut.items.length;
        let mrr = 0;
        pairs.forEach((p, k) => {
          const target = heldOut.items.findIndex((i) => i.itemId === p.itemId);
          if (target < 0) return;
          const score = (i: number) => {
            let s = 0;
            for (let j = 0; j < dim; j++) s += (queriesEmb[k * dim + j] as number) * (itemsEmb[i * dim + j] as number);
            return s;
          };
          const t = score(target);
          let rank = 0;
          for (let i = 0; i < heldOut.items.length; i++) if (i !== target && score(i) > t) rank++;
          mrr += 1 / (rank + 1);
        });
        return { metric: 'mrr', value: mrr / Math.max(1, pairs.length), cases: pairs.length };
      }
      case 'ranker': {
        // Same lists for every ranker version: candidates of the given sequence model.
        if (!context.sasrec) throw new Error('scoring a ranker needs the candidate sequence model');
        const seq = await createSession(context.sasrec.onnx);
        const itemIds = context.sasrec.sidecar['itemIds'] as string[];
        const index = new Map(itemIds.map((id, i) => [id, i]));
        const stats = itemStats(context.trainEvents);
        const sequences = fromEvents('train', context.trainEvents);
        const covis = coVisitation({
          ...sequences,
          itemIds,
          sequences: sequences.sequences.map((s) =>
            Int32Array.from(s, (i) => index.get(sequences.itemIds[i] as string) ?? 0),
          ),
        });
        const catalog = new Map(heldOut.items.map((i) => [i.itemId, i]));
        let total = 0;
        for (const c of heldOut.nextItem) {
          const hist = Int32Array.from(c.history.map((h) => index.get(h) ?? 0).filter((i) => i > 0));
          const seqScores = await fullScores(seq, context.sasrec.sidecar, hist);
          const built = candidateRows(
            c.history,
            seqScores,
            covis.scoreBatch([hist])[0] as Float32Array,
            itemIds,
            catalog,
            stats,
          );
          const x = new Float32Array(built.rows.length * RANKER_FEATURES.length);
          built.rows.forEach((r, i) => x.set(r, i * RANKER_FEATURES.length));
          const out = await session.run({
            features: { type: 'float32', data: x, dims: [built.rows.length, RANKER_FEATURES.length] },
          });
          const scores = out['score']?.data as Float32Array;
          const pos = built.items.indexOf(c.target);
          if (pos < 0) continue;
          let rank = 0;
          for (let i = 0; i < scores.length; i++)
            if (i !== pos && (scores[i] as number) > (scores[pos] as number)) rank++;
          total += ndcgOf(rank);
        }
        await seq.release();
        return {
          metric: 'ndcg@10',
          value: total / Math.max(1, heldOut.nextItem.length),
          cases: heldOut.nextItem.length,
        };
      }
      case 'churn': {
        const { X, y } = heldOut.churn;
        const F = CHURN_FEATURES.length;
        const flat = new Float32Array(X.length * F);
        X.forEach((x, i) => flat.set(x, i * F));
        const out = await session.run({ features: { type: 'float32', data: flat, dims: [X.length, F] } });
        return { metric: 'roc_auc', value: rocAuc(out['risk']?.data as Float32Array, y), cases: X.length };
      }
    }
  } finally {
    await session.release();
  }
}

/** The session metric that decides publication: P@20 + MRR@20 (fractions), the selection rule of `aisle eval`. */
function sessionScore(
  heldOut: HeldOut,
  recommend: (prefix: string[]) => readonly string[],
): { metric: string; value: number; cases: number } {
  const m = sessionMetricsOfRanks(heldOut.sessions.map((c) => recommend(c.prefix).indexOf(c.target)));
  return { metric: 'p@20+mrr@20', value: (m.p20 + m.mrr20) / 100, cases: m.cases };
}

/** 0-based rank of `target` among all items by `scores` (index 0 unused); -1 when it is not an item. */
function rankIn(scores: Float32Array, target: number): number {
  if (target <= 0) return -1;
  const t = scores[target] as number;
  let rank = 0;
  for (let i = 1; i < scores.length; i++) if (i !== target && (scores[i] as number) > t) rank++;
  return rank;
}

/**
 * The simple baseline a candidate must beat on the same held-out slice and metric: item co-visitation
 * (`WindowedCoVisitation` with its defaults) counted on the training events, over users' sequences for
 * the sequence model and the ranker (NDCG@10 of the next item, full ranking), over sessions for the
 * session model (P@20 + MRR@20). Undefined for models without one.
 */
export function baselineOnHeldOut(
  name: ModelName,
  heldOut: HeldOut,
  trainEvents: readonly ShopEvent[],
): { name: string; value: number } | undefined {
  if (name === 'sasrec' || name === 'ranker') {
    const d = fromEvents('train', trainEvents);
    const covis = new WindowedCoVisitation(d.sequences, d.itemIds.length - 1, DEFAULT_CO_VISITATION);
    const index = new Map(d.itemIds.map((id, i) => [id, i]));
    let total = 0;
    for (const c of heldOut.nextItem) {
      const hist = Int32Array.from(c.history.map((h) => index.get(h) ?? 0).filter((i) => i > 0));
      total += ndcgOf(rankIn(covis.scores(hist), index.get(c.target) ?? 0));
    }
    return { name: 'co-visitation', value: total / Math.max(1, heldOut.nextItem.length) };
  }
  if (name === 'session') {
    const { itemIds, sessions } = internSessions(sessionsFromEvents(trainEvents));
    const covis = new WindowedCoVisitation(sessions, itemIds.length - 1, DEFAULT_CO_VISITATION);
    const index = new Map(itemIds.map((id, i) => [id, i]));
    const m = sessionMetricsOfRanks(
      heldOut.sessions.map((c) => {
        const prefix = Int32Array.from(c.prefix.map((h) => index.get(h) ?? 0).filter((i) => i > 0));
        return rankIn(covis.scores(prefix), index.get(c.target) ?? 0);
      }),
    );
    return { name: 'session co-visitation', value: (m.p20 + m.mrr20) / 100 };
  }
  return undefined;
}

/** Item ids through the sequence model's vocabulary (unknown ones dropped). */
function toIndices(sidecar: Record<string, unknown>, history: readonly string[]): number[] {
  const index = vocabulary(sidecar);
  return history.map((id) => index.get(id) ?? 0).filter((i) => i > 0);
}

const vocabularies = new WeakMap<Record<string, unknown>, Map<string, number>>();
function vocabulary(sidecar: Record<string, unknown>): Map<string, number> {
  let v = vocabularies.get(sidecar);
  if (!v) {
    v = new Map((sidecar['itemIds'] as string[]).map((id, i) => [id, i]));
    vocabularies.set(sidecar, v);
  }
  return v;
}

async function sasrecTopK(
  session: OrtSession,
  sidecar: Record<string, unknown>,
  histories: ReadonlyArray<readonly string[]>,
  k: number,
): Promise<string[][]> {
  const itemIds = sidecar['itemIds'] as string[];
  const out: string[][] = [];
  for (let s = 0; s < histories.length; s += 256) {
    const batch = histories.slice(s, s + 256);
    const kk = Math.min(k, itemIds.length - 1);
    const res = await session.run(
      sasrecFeeds(
        batch.map((h) => toIndices(sidecar, h)),
        batch.map(() => []),
        kk,
        Number(sidecar['maxLen'] ?? 50),
      ),
    );
    for (const row of sasrecResults(
      res,
      batch.length,
      Number(sidecar['dim']),
      batch.map(() => kk),
    ))
      out.push(row.items.map((i) => itemIds[i] as string));
  }
  return out;
}

/** Inner-product scores of every item for one history, from the model's user embedding. */
async function fullScores(
  session: OrtSession,
  sidecar: Record<string, unknown>,
  hist: Int32Array,
): Promise<Float32Array> {
  const itemIds = sidecar['itemIds'] as string[];
  const k = itemIds.length - 1;
  const res = await session.run(sasrecFeeds([Array.from(hist)], [[]], k, Number(sidecar['maxLen'] ?? 50)));
  const [row] = sasrecResults(res, 1, Number(sidecar['dim']), [k]);
  const scores = new Float32Array(itemIds.length).fill(-1e9);
  row?.items.forEach((i, j) => (scores[i] = row.scores[j] as number));
  return scores;
}

/** Semantic neighbours through a published text encoder (what embedding-inference's Retrieve computes). */
async function ortRetriever(
  artifact: { onnx: Uint8Array; sidecar: Record<string, unknown> },
  items: readonly ShopItem[],
): Promise<{ retrieve: SemanticRetriever; release: () => Promise<void> }> {
  const session = await createSession(artifact.onnx);
  const emb = await encodeTexts(session, artifact.sidecar, items.map(itemText), 'item_embedding');
  const dim = emb.length / Math.max(1, items.length);
  const retrieve: SemanticRetriever = async (texts) => {
    const q = await encodeTexts(session, artifact.sidecar, texts, 'query_embedding');
    return texts.map((_, k) => {
      const top = topKInnerProduct(emb, dim, q.subarray(k * dim, (k + 1) * dim), SEMANTIC_NEIGHBOURS);
      return new Map(top.map((t) => [(items[t.index] as ShopItem).itemId, t.score]));
    });
  };
  return { retrieve, release: () => session.release() };
}

async function encodeTexts(
  session: OrtSession,
  sidecar: Record<string, unknown>,
  texts: readonly string[],
  output: string,
): Promise<Float32Array> {
  const hasher = sidecar['hasher'] as { buckets: number; maxIds: number };
  const parts: Float32Array[] = [];
  for (let s = 0; s < texts.length; s += 256) {
    const { ids, width } = hashBatch(texts.slice(s, s + 256), hasher);
    const res = await session.run({
      token_ids: {
        type: 'int64',
        data: BigInt64Array.from(ids, (v) => BigInt(v)),
        dims: [Math.min(256, texts.length - s), width],
      },
    });
    parts.push(res[output]?.data as Float32Array);
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
