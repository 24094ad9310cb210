import { inCategory } from './filters';
import type {
  CallBudget,
  CatalogPort,
  CoVisitationPort,
  ImpressionSink,
  ItemStats,
  ItemStatsPort,
  Neighbor,
  PopularityPort,
  RankerPort,
  Retrieved,
  SequenceRetrievalPort,
  ServedEvent,
  TextRetrievalPort,
  UserContext,
  UserContextPort,
  UserProfile,
} from './ports';
import { recentDistinct } from './sources/co-visitation';

/**
 * Ports over plain in-memory data: for unit tests and for running the serving pipeline in-process
 * over a data set (the trainer's `aisle eval --model pipeline`), with no service behind it.
 */

/** Co-visit lists per item, most first. */
export class MemoryCoVisitation implements CoVisitationPort {
  constructor(readonly lists: Map<string, readonly Neighbor[]> = new Map()) {}

  async coVisited(itemIds: readonly string[], limit: number): Promise<ReadonlyMap<string, readonly Neighbor[]>> {
    return this.lookup(itemIds, limit);
  }

  lookup(itemIds: readonly string[], limit: number): Map<string, readonly Neighbor[]> {
    const out = new Map<string, readonly Neighbor[]>();
    for (const id of itemIds) {
      const list = this.lists.get(id);
      if (list) out.set(id, list.length > limit ? list.slice(0, limit) : list);
    }
    return out;
  }
}

/** User profiles by id, with co-visits of their recent items from a `MemoryCoVisitation`. */
export class MemoryUserContext implements UserContextPort {
  constructor(
    readonly profiles: Map<string, UserProfile> = new Map(),
    private readonly coVisitation: MemoryCoVisitation = new MemoryCoVisitation(),
  ) {}

  async userContext(userId: string, opts: { coVisitItems: number; coVisitLimit: number }): Promise<UserContext> {
    const user = this.profiles.get(userId);
    if (!user) return { user: undefined, coVisits: new Map() };
    const seeds = recentDistinct(
      user.recent.map((r) => r.itemId),
      opts.coVisitItems,
    );
    return { user, coVisits: this.coVisitation.lookup(seeds, opts.coVisitLimit) };
  }
}

/**
 * Item statistics in memory, and popular lists derived from them with the catalog's categories (most
 * popular first; ties by item id). The ranking service keeps one of these filled from the feature
 * service; an evaluator fills it from a data set.
 */
export class ItemStatsTable implements ItemStatsPort, PopularityPort {
  /** One name for both roles, so a stale table is reported once. */
  readonly dependency = 'item_stats';
  private byId = new Map<string, ItemStats>();
  private ranked: Neighbor[] | undefined;
  private readonly lists = new Map<string, Neighbor[]>();
  private stale: string | undefined;

  constructor(
    private readonly catalog: CatalogPort,
    /** Longest popular list kept per category. */
    private readonly listLength = 100,
    /** Most categories with a list kept (the lists are rebuilt on demand). */
    private readonly maxLists = 10_000,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Replaces every item's statistics. */
  replace(stats: Iterable<[string, ItemStats]>): void {
    this.byId = new Map(stats);
    this.ranked = undefined;
    this.lists.clear();
  }

  set(itemId: string, stats: ItemStats): void {
    this.byId.set(itemId, stats);
    this.ranked = undefined;
    this.lists.clear();
  }

  stats(itemId: string): ItemStats | undefined {
    return this.byId.get(itemId);
  }

  /** Says why the statistics may be out of date (undefined: they are current). */
  markStale(reason: string | undefined): void {
    this.stale = reason;
  }

  staleReason(): string | undefined {
    return this.stale;
  }

  popular(category: string, limit: number): readonly Neighbor[] {
    const list = this.list(category);
    return list.length > limit ? list.slice(0, limit) : list;
  }

  private list(category: string): Neighbor[] {
    let list = this.lists.get(category);
    if (list) return list;
    this.ranked ??= [...this.byId]
      .filter(([, s]) => s.popularity7d > 0)
      .map(([itemId, s]) => ({ itemId, score: s.popularity7d }))
      .sort((a, b) => b.score - a.score || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0));
    list = [];
    for (const n of this.ranked) {
      if (list.length >= this.listLength) break;
      if (category) {
        const item = this.catalog.get(n.itemId);
        if (!item || !inCategory(item.category, category)) continue;
      }
      list.push(n);
    }
    if (this.lists.size >= this.maxLists) this.lists.clear();
    this.lists.set(category, list);
    return list;
  }
}

/** A sequence retrieval port over a function (an in-process ONNX session, a baseline, a fake). */
export function sequenceRetrievalFrom(
  fn: (history: readonly string[], k: number, exclude: readonly string[], budget: CallBudget) => Promise<Retrieved>,
  dependency = 'sequence_retrieval',
): SequenceRetrievalPort {
  return { dependency, bySequence: fn };
}

export function textRetrievalFrom(
  fn: (text: string, k: number, exclude: readonly string[], budget: CallBudget) => Promise<Retrieved>,
  dependency = 'text_retrieval',
): TextRetrievalPort {
  return { dependency, byText: fn };
}

export function rankerFrom(
  version: string,
  score: (features: Float32Array, rows: number) => Promise<Float32Array>,
): RankerPort {
  return { version, score };
}

/** Keeps every impression (tests, evaluation). */
export class CollectedImpressions implements ImpressionSink {
  readonly events: ServedEvent[] = [];
  served(e: ServedEvent): void {
    this.events.push(e);
  }
}
