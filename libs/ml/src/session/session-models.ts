import { PairCounts } from '../eval/co-visitation';
import { ScoreAccumulator } from './scores';

/**
 * Session-based recommenders over a log of training sessions (item indices, oldest session first).
 * Every model scores the items that may follow a session prefix; repeats are allowed (an item already in
 * the session may come next: a fifth of Diginetica's next clicks are re-views). All are plain TypeScript
 * over typed arrays, so the ranking service scores anonymous sessions with this same code.
 */
export interface SessionScorer {
  readonly name: string;
  /** Adds the scores of items that may follow `prefix` into `acc` (which the caller reset). */
  scoreInto(prefix: Int32Array, acc: ScoreAccumulator): void;
}

/** Item popularity over the training clicks: the sanity check (P@20 ~0.9 % on Diginetica). */
export class Popularity implements SessionScorer {
  readonly name = 'Popularity';
  readonly counts: Float64Array;
  /** The most popular items, most popular first. */
  readonly order: number[];

  constructor(sessions: readonly Int32Array[], numItems: number, keep = 100) {
    this.counts = new Float64Array(numItems + 1);
    for (const s of sessions) for (const i of s) this.counts[i] = (this.counts[i] as number) + 1;
    const acc = new ScoreAccumulator(numItems + 1);
    for (let i = 1; i <= numItems; i++) if ((this.counts[i] as number) > 0) acc.add(i, this.counts[i] as number);
    this.order = acc.top(keep);
  }

  scoreInto(_prefix: Int32Array, acc: ScoreAccumulator): void {
    for (const i of this.order) acc.add(i, this.counts[i] as number);
  }
}

export interface SequentialRulesConfig {
  /** Pairs (a, b) with b at most this many clicks after a in a session count, weighted 1/gap. */
  steps: number;
}

/**
 * Sequential rules (Ludewig & Jannach 2018): how often item b followed item a within `steps` clicks, with
 * weight 1/gap, scored from the session's last item.
 */
export class SequentialRules implements SessionScorer {
  readonly name: string;
  private readonly pairs: PairCounts;

  constructor(
    sessions: readonly Int32Array[],
    numItems: number,
    readonly cfg: SequentialRulesConfig,
  ) {
    this.name = `SR(steps ${cfg.steps})`;
    this.pairs = new PairCounts(sessions, numItems, cfg.steps, (gap) => 1 / gap);
  }

  scoreInto(prefix: Int32Array, acc: ScoreAccumulator): void {
    const last = prefix[prefix.length - 1];
    if (last !== undefined && last > 0) this.pairs.forEach(last, (item, weight) => acc.add(item, weight));
  }
}

export interface SessionKnnConfig {
  /** Neighbour sessions whose items are scored. */
  neighbors: number;
  /** Per item of the current session, only its most recent sessions are candidate neighbours. */
  sampleSize: number;
  /** Weight of the current session's items by position: exp(-(distance from its end) / positionDecay). */
  positionDecay: number;
  /**
   * Weight of a neighbour by age: exp(-(sessions since it) / (recencyDecay x log size)); 0 = off. The log
   * order is the only clock (session files carry no timestamps), so age is measured in sessions.
   */
  recencyDecay: number;
  /** Weight of a neighbour's item by distance to the item it shares with the session: exp(-d / itemDecay). */
  itemDecay: number;
  /** The same for items before the shared one (what came before is a weaker hint of what comes next). */
  itemDecayBefore: number;
  /** Weigh shared items by inverse document frequency (rare shared items say more than popular ones). */
  idf: boolean;
}

/**
 * Session-based kNN in the style of STAN (Garg et al., SIGIR 2019): neighbours are earlier sessions that
 * share items with the current one, similarity weighs recent items of the current session more and is
 * normalized by both lengths; a neighbour's items count more the closer they are to the shared item.
 */
export class SessionKnn implements SessionScorer {
  readonly name: string;
  private readonly offsets: Int32Array;
  private readonly items: Int32Array;
  private readonly distinct: Int32Array;
  /** For each item, the sessions containing it (ascending = oldest first). */
  private readonly itemStart: Int32Array;
  private readonly itemSessions: Int32Array;
  private readonly sim: Float64Array;
  private readonly touched: Int32Array;
  private readonly longest: number;
  private readonly decayTables = new Map<number, Float64Array>();
  /** Per-query scratch (one query at a time per index). */
  private readonly scratch: {
    readonly positionOf: Int32Array;
    items: Int32Array;
    neighborWeights: Float64Array;
    select: Float64Array;
  };

  constructor(
    sessions: readonly Int32Array[],
    numItems: number,
    readonly cfg: SessionKnnConfig,
    from?: SessionKnn,
  ) {
    this.name = `SKNN(${JSON.stringify(cfg).replace(/["{}]/g, '')})`;
    if (from) {
      // Same index, other settings (tuning): share every array but the per-query scratch.
      this.offsets = from.offsets;
      this.items = from.items;
      this.distinct = from.distinct;
      this.itemStart = from.itemStart;
      this.itemSessions = from.itemSessions;
      this.sim = from.sim;
      this.touched = from.touched;
      this.longest = from.longest;
      this.scratch = from.scratch;
      return;
    }
    this.offsets = new Int32Array(sessions.length + 1);
    sessions.forEach((s, n) => (this.offsets[n + 1] = (this.offsets[n] as number) + s.length));
    this.items = new Int32Array(this.offsets[sessions.length] as number);
    sessions.forEach((s, n) => this.items.set(s, this.offsets[n] as number));
    this.distinct = Int32Array.from(sessions, (s) => new Set(s).size);
    const counts = new Int32Array(numItems + 2);
    sessions.forEach((s) => new Set(s).forEach((i) => (counts[i + 1] = (counts[i + 1] as number) + 1)));
    for (let i = 1; i < counts.length; i++) counts[i] = (counts[i] as number) + (counts[i - 1] as number);
    this.itemStart = counts;
    this.itemSessions = new Int32Array(counts[numItems + 1] as number);
    const fill = counts.slice();
    sessions.forEach((s, n) =>
      new Set(s).forEach((i) => {
        const p = fill[i] as number;
        fill[i] = p + 1;
        this.itemSessions[p] = n;
      }),
    );
    this.sim = new Float64Array(sessions.length);
    this.touched = new Int32Array(sessions.length);
    this.longest = sessions.reduce((m, x) => Math.max(m, x.length), 0);
    this.scratch = {
      positionOf: new Int32Array(numItems + 1).fill(-1),
      items: new Int32Array(this.longest + 1),
      neighborWeights: new Float64Array(sessions.length),
      select: new Float64Array(sessions.length),
    };
  }

  /** This index with other settings (no copy). */
  withConfig(cfg: SessionKnnConfig): SessionKnn {
    return new SessionKnn([], 0, cfg, this);
  }

  get sessionCount(): number {
    return this.distinct.length;
  }

  scoreInto(prefix: Int32Array, acc: ScoreAccumulator): void {
    const { neighbors, sampleSize, positionDecay, recencyDecay, itemDecay, itemDecayBefore } = this.cfg;
    const L = prefix.length;
    if (L === 0) return;
    // The current session's distinct items, each at its most recent position.
    const s = this.scratch;
    if (s.items.length < L) s.items = new Int32Array(L);
    const posOf = s.positionOf;
    let distinct = 0;
    for (let p = 0; p < L; p++) {
      const i = prefix[p] as number;
      if (i <= 0 || i + 1 >= this.itemStart.length) continue;
      if ((posOf[i] as number) < 0) s.items[distinct++] = i;
      posOf[i] = p;
    }
    if (distinct === 0) return;
    // Similarity accumulated over the sampled sessions of each item (the most recent ones).
    let nTouched = 0;
    for (let k = 0; k < distinct; k++) {
      const i = s.items[k] as number;
      const start = this.itemStart[i] as number;
      const end = this.itemStart[i + 1] as number;
      let weight = Math.exp(-(L - 1 - (posOf[i] as number)) / positionDecay);
      if (this.cfg.idf) weight *= Math.log(1 + this.distinct.length / Math.max(1, end - start));
      for (let q = Math.max(start, end - sampleSize); q < end; q++) {
        const n = this.itemSessions[q] as number;
        if (this.sim[n] === 0) this.touched[nTouched++] = n;
        this.sim[n] = (this.sim[n] as number) + weight;
      }
    }
    // Final neighbour weights (length-normalized, aged), then the `neighbors` best by selection.
    const T = this.distinct.length;
    const norm = Math.sqrt(distinct);
    const weights = s.neighborWeights;
    for (let t = 0; t < nTouched; t++) {
      const n = this.touched[t] as number;
      let w = (this.sim[n] as number) / (norm * Math.sqrt(this.distinct[n] as number));
      this.sim[n] = 0;
      if (recencyDecay > 0) w *= Math.exp(-(T - n) / (recencyDecay * T));
      weights[t] = w;
    }
    const threshold = nTouched > neighbors ? kthLargest(weights, nTouched, neighbors, s.select) : -Infinity;
    let above = 0;
    for (let t = 0; t < nTouched; t++) if ((weights[t] as number) > threshold) above++;
    let tiesLeft = Math.min(nTouched, neighbors) - above;
    const after = this.decayTable(itemDecay);
    const before = this.decayTable(itemDecayBefore);
    for (let t = 0; t < nTouched; t++) {
      const w = weights[t] as number;
      if (w < threshold || (w === threshold && tiesLeft-- <= 0)) continue;
      const n = this.touched[t] as number;
      const start = this.offsets[n] as number;
      const end = this.offsets[n + 1] as number;
      // The neighbour's position of the shared item that is most recent in the current session.
      let anchor = start;
      let anchorPos = -1;
      for (let q = start; q < end; q++) {
        const p = posOf[this.items[q] as number] as number;
        if (p >= anchorPos && p >= 0) {
          anchorPos = p;
          anchor = q;
        }
      }
      for (let q = start; q < end; q++) {
        const d = q - anchor;
        const f = d >= 0 ? after[Math.min(d, after.length - 1)] : before[Math.min(-d, before.length - 1)];
        if ((f as number) > 0) acc.add(this.items[q] as number, w * (f as number));
      }
    }
    for (let k = 0; k < distinct; k++) posOf[s.items[k] as number] = -1;
  }

  /** exp(-d / decay) for d = 0..(longest session); all 0 when decay is 0 (the side is left out). */
  private decayTable(decay: number): Float64Array {
    let t = this.decayTables.get(decay);
    if (!t) {
      t = Float64Array.from({ length: this.longest + 1 }, (_, d) => (decay > 0 ? Math.exp(-d / decay) : 0));
      this.decayTables.set(decay, t);
    }
    return t;
  }
}

/** The k-th largest of values[0..n) (k >= 1), by quickselect on a scratch copy. */
function kthLargest(values: Float64Array, n: number, k: number, scratch: Float64Array): number {
  const a = scratch.subarray(0, n);
  a.set(values.subarray(0, n));
  let lo = 0;
  let hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) > pivot) i++;
      while ((a[j] as number) < pivot) j--;
      if (i <= j) {
        const x = a[i] as number;
        a[i] = a[j] as number;
        a[j] = x;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target] as number;
}

export interface RepeatConfig {
  /** Weight of an item already in the session by how recently it was clicked. */
  positionDecay: number;
}

/** Re-views: items of the session itself, recent ones first. */
export class Repeats implements SessionScorer {
  readonly name: string;
  constructor(readonly cfg: RepeatConfig) {
    this.name = `Repeats(pos ${cfg.positionDecay})`;
  }

  scoreInto(prefix: Int32Array, acc: ScoreAccumulator): void {
    const L = prefix.length;
    for (let p = 0; p < L; p++) {
      const i = prefix[p] as number;
      if (i > 0) acc.add(i, Math.exp(-(L - 1 - p) / this.cfg.positionDecay));
    }
  }
}

/**
 * A weighted sum of scorers, each first divided by its own maximum for the query (so weights compare
 * models whose scores live on different scales).
 */
export class SessionBlend implements SessionScorer {
  readonly name: string;
  private readonly scratch: ScoreAccumulator;

  constructor(
    readonly parts: ReadonlyArray<{ scorer: SessionScorer; weight: number }>,
    numItems: number,
  ) {
    this.name = parts.map((p) => `${p.weight} x ${p.scorer.name}`).join(' + ');
    this.scratch = new ScoreAccumulator(numItems + 1);
  }

  scoreInto(prefix: Int32Array, acc: ScoreAccumulator): void {
    for (const { scorer, weight } of this.parts) {
      if (weight === 0) continue;
      this.scratch.reset();
      scorer.scoreInto(prefix, this.scratch);
      this.scratch.addTo(acc, weight, this.scratch.max());
    }
  }
}

/** Top-k recommendations from a scorer, filled up with popular items when it knows too few. */
export class SessionRecommender {
  private readonly acc: ScoreAccumulator;

  constructor(
    readonly scorer: SessionScorer,
    private readonly popularity: Popularity,
    numItems: number,
  ) {
    this.acc = new ScoreAccumulator(numItems + 1);
  }

  recommend(prefix: Int32Array, k: number): number[] {
    return this.recommendScored(prefix, k).items;
  }

  /** The top `k` with their scores (popular fill-ins score 0). */
  recommendScored(prefix: Int32Array, k: number): { items: number[]; scores: number[] } {
    const acc = this.acc;
    acc.reset();
    this.scorer.scoreInto(prefix, acc);
    const items = acc.top(k, this.popularity.counts);
    const scores = items.map((i) => acc.scores[i] as number);
    if (items.length < k) {
      const have = new Set(items);
      for (const i of this.popularity.order) {
        if (items.length >= k) break;
        if (have.has(i)) continue;
        items.push(i);
        scores.push(0);
      }
    }
    return { items, scores };
  }
}
