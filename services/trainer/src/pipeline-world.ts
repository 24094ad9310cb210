import {
  numItems,
  rankOfScore,
  sequencesBefore,
  topIndices,
  WindowedCoVisitation,
  type CoVisitationConfig,
  type Sasrec,
  type SequenceDataset,
} from '@aisle/ml';
import {
  Catalog,
  COVISIT_RANK,
  ItemStatsTable,
  MemoryCoVisitation,
  MemoryUserContext,
  type Neighbor,
  type PipelinePorts,
  type PopularityPort,
  type Retrieved,
  type SequenceRetrievalPort,
  type UserProfile,
} from '@aisle/ranking-core';

/**
 * The serving pipeline's ports over a leave-one-out data set, as the ranking service would see the shop
 * at one point in time ("world"): at validation time every user's history ends before the validation
 * item and co-visitation and popularity count only the training parts; at test time histories and counts
 * also include the validation items. Nothing in a world ever sees its own targets.
 */
export type WorldSplit = 'valid' | 'test';

export interface World {
  split: WorldSplit;
  /** Per user: the items before the split's target (item indices, oldest first). */
  histories: Int32Array[];
  /** What co-visitation and popularity count. */
  counted: Int32Array[];
}

export function worldOf(d: SequenceDataset, split: WorldSplit): World {
  const counted = sequencesBefore(d, split);
  return { split, histories: counted, counted };
}

/** Item categories (a path "a > b > c") from attribute lists, when the data set has them. */
export function categoriesFromAttributes(attrs: ReadonlyMap<number, readonly number[]>): Map<number, string> {
  const out = new Map<number, string>();
  for (const [item, list] of attrs) out.set(item, list.map(String).join(' > '));
  return out;
}

/** Category affinity as the feature service computes it: every level of a path is credited. */
function affinityOf(history: Int32Array, categories: ReadonlyMap<number, string>): UserProfile['affinity'] {
  const counts = new Map<string, number>();
  for (const i of history) {
    const path = categories.get(i);
    if (!path) continue;
    const parts = path.split(' > ');
    for (let k = 1; k <= parts.length; k++) {
      const level = parts.slice(0, k).join(' > ');
      counts.set(level, (counts.get(level) ?? 0) + 1);
    }
  }
  return [...counts].map(([category, score]) => ({ category, score })).sort((a, b) => b.score - a.score);
}

/** The sequence model behind a `SequenceRetrievalPort`: top-k retrieval, and scores of given items. */
export class SasrecRetrieval implements SequenceRetrievalPort {
  readonly dependency = 'sequence_retrieval';
  private readonly cache = new Map<string, { top: Neighbor[]; scores: Float32Array }>();
  private readonly index: Map<string, number>;

  constructor(
    private readonly model: Sasrec,
    private readonly itemIds: readonly string[],
    readonly version: string,
    /** How many retrieved items to keep per history (the most the pipeline asks for). */
    private readonly keep = 300,
  ) {
    this.index = new Map(itemIds.map((id, i) => [id, i]));
  }

  /** Scores every history in batches ahead of the requests (requests then read the cache). */
  prepare(histories: readonly Int32Array[], keepScores = false): void {
    const order = histories.map((_, i) => i).sort((a, b) => (histories[a]?.length ?? 0) - (histories[b]?.length ?? 0));
    for (let s = 0; s < order.length; s += 256) {
      const batch = order.slice(s, s + 256).map((i) => histories[i] as Int32Array);
      const rows = this.model.scoreBatch(batch);
      batch.forEach((h, b) => this.remember(h, rows[b] as Float32Array, keepScores));
    }
  }

  clear(): void {
    this.cache.clear();
  }

  private remember(history: Int32Array, scores: Float32Array, keepScores: boolean) {
    const top = topIndices(scores, this.keep);
    const entry = {
      top: Array.from(top.items, (i, k) => ({ itemId: this.itemIds[i] as string, score: top.scores[k] as number })),
      scores: keepScores ? scores.slice() : new Float32Array(0),
    };
    this.cache.set(key(history), entry);
    return entry;
  }

  private lookup(history: readonly string[], needScores: boolean) {
    const idx = Int32Array.from(history, (id) => this.index.get(id) ?? 0).filter((i) => i > 0);
    const hit = this.cache.get(key(idx));
    if (hit && (!needScores || hit.scores.length > 0)) return hit;
    return this.remember(idx, this.model.scoreBatch([idx])[0] as Float32Array, needScores);
  }

  bySequence(history: readonly string[], k: number, exclude: readonly string[]): Promise<Retrieved> {
    const banned = new Set(exclude);
    const items = this.lookup(history, false)
      .top.filter((n) => !banned.has(n.itemId))
      .slice(0, k);
    return Promise.resolve({ items, version: this.version });
  }

  scoreItems(history: readonly string[], itemIds: readonly string[]): Promise<Retrieved & { ranks: number[] }> {
    const { scores } = this.lookup(history, true);
    const items = itemIds.map((id) => ({
      itemId: id,
      score: scores[this.index.get(id) ?? 0] ?? Number.NEGATIVE_INFINITY,
    }));
    return Promise.resolve({
      items,
      ranks: items.map((n) => rankOfScore(scores, n.score)),
      version: this.version,
    });
  }
}

function key(history: ArrayLike<number>): string {
  return Array.prototype.join.call(history, ',');
}

export interface WorldPorts {
  ports: PipelinePorts;
  coVisitation: WindowedCoVisitation;
}

/**
 * In-memory ports of one world: the catalog (every item, categories from attributes when known), user
 * profiles (views, oldest first), co-visitation lists (the top 100 per item a store keeps, settings chosen on
 * validation),
 * popularity, and the sequence model when given.
 */
export function worldPorts(
  d: SequenceDataset,
  world: World,
  opts: {
    coVisitation: CoVisitationConfig;
    categories: ReadonlyMap<number, string>;
    sequence?: SequenceRetrievalPort | undefined;
    /** Leave candidate sources out (for "the ranker over one source" rows). */
    without?: ReadonlySet<'sequence' | 'co_visit' | 'popularity'>;
  },
): WorldPorts {
  const n = numItems(d);
  const catalog = new Catalog({ maxItems: Math.max(200_000, n + 1) });
  catalog.upsert(
    d.itemIds.slice(1).map((itemId, k) => ({
      itemId,
      title: itemId,
      category: opts.categories.get(k + 1) ?? '',
      brand: '',
      price: 0,
      inStock: true,
    })),
  );
  const covis = new WindowedCoVisitation(world.counted, n, opts.coVisitation);
  const lists = new Map<string, Neighbor[]>();
  if (!opts.without?.has('co_visit'))
    for (let i = 1; i <= n; i++) {
      const ns = covis.neighbors(i, COVISIT_RANK.perItem);
      if (ns.length > 0)
        lists.set(
          d.itemIds[i] as string,
          ns.map((x) => ({ itemId: d.itemIds[x.item] as string, score: x.score })),
        );
    }
  const coVisitation = new MemoryCoVisitation(lists);
  const profiles = new Map<string, UserProfile>();
  world.histories.forEach((h, u) => {
    profiles.set(d.users[u] as string, {
      userId: d.users[u] as string,
      recent: Array.from(h, (i, k) => ({ itemId: d.itemIds[i] as string, type: 'view', at: k })),
      purchased: new Set(),
      affinity: affinityOf(h, opts.categories),
      price: undefined,
      queries: [],
    });
  });
  const stats = new ItemStatsTable(catalog, 100);
  stats.replace(
    d.itemIds
      .slice(1)
      .map((id, k) => [id, { popularity7d: covis.popularity[k + 1] ?? 0, ctr: 0.05, conversionRate: 0.01 }]),
  );
  const noPopular: PopularityPort = { popular: () => [] };
  return {
    coVisitation: covis,
    ports: {
      catalog,
      userContext: new MemoryUserContext(profiles, coVisitation),
      coVisitation,
      itemStats: stats,
      popularity: opts.without?.has('popularity') ? noPopular : stats,
      sequenceRetrieval: opts.without?.has('sequence') ? undefined : opts.sequence,
    },
  };
}
