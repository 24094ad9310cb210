import type { RankingItem, UserProfile } from './ports';

export interface Scored {
  itemId: string;
  score: number;
  /** Undefined for items not in the catalog (Rank keeps them). */
  item: RankingItem | undefined;
  row: number;
}

/** A retention treatment: users at churn risk see more of what they already like. */
export interface RetentionRule {
  /** Added to the score of items in the user's preferred categories. */
  boost: number;
  /** Churn risk from which a user is treated. */
  threshold: number;
}

/** How many of a user's strongest category affinities the retention rule favours. */
export const RETENTION_CATEGORIES = 3;

/**
 * The retention rule: for a user whose churn risk is at least the threshold, items in their strongest
 * category affinities get `boost` added. Returns how many items it boosted.
 */
export function applyRetention(
  items: Scored[],
  user: UserProfile | undefined,
  churnRisk: number | undefined,
  rule: RetentionRule,
): number {
  if (!user || churnRisk === undefined || churnRisk < rule.threshold || rule.boost <= 0) return 0;
  const preferred = user.affinity.slice(0, RETENTION_CATEGORIES).map((a) => a.category);
  let boosted = 0;
  for (const it of items) {
    const category = it.item?.category;
    if (category && preferred.some((p) => category.startsWith(p))) {
      it.score += rule.boost;
      boosted++;
    }
  }
  return boosted;
}

/** How many of the first positions the diversity rule looks at. */
export const DIVERSITY_WINDOW = 10;

/**
 * Search's category limit: none. A query names what the shopper wants, so the first ten keep the search
 * model's relevance order; spreading them over categories is for recommendations. (Applied to Search, it
 * moved the named product out of the first ten whenever it was the fourth hit of a crowded category:
 * -0.013 NDCG@10 on amazon-scientific's exact title fragments, docs/ml.md.)
 */
export const SEARCH_MAX_PER_CATEGORY = Number.POSITIVE_INFINITY;

/**
 * Business rules over scored items: context boosts (`boost_category`, `boost_brand`: +1), in-stock items
 * first, then at most `maxPerCategory` items of one category among the first ten (the others move down).
 * Answers the first `limit` of that order (all by default); ties keep the items' order. Only as much of
 * the order is sorted as the answer needs (a heap, then one pop per position looked at).
 */
export function applyRules(
  items: Scored[],
  context: Record<string, string>,
  maxPerCategory: number,
  limit = items.length,
): Scored[] {
  const boostCategory = context['boost_category'];
  const boostBrand = context['boost_brand'];
  if (boostCategory || boostBrand)
    for (const it of items) {
      if (boostCategory && it.item?.category.startsWith(boostCategory)) it.score += 1;
      if (boostBrand && it.item?.brand === boostBrand) it.score += 1;
    }
  const order = new RuleOrder(items);
  const top: Scored[] = [];
  const deferred: Scored[] = [];
  const counts = new Map<string, number>();
  // The first positions are fixed once `top` holds them (later items only go after them); past the
  // diversity window, the rest is the deferred items followed by what is left, in order.
  while (top.length < Math.min(limit, DIVERSITY_WINDOW)) {
    const it = order.pop();
    if (!it) break;
    const cat = it.item?.category ?? '';
    if (cat && (counts.get(cat) ?? 0) >= maxPerCategory) deferred.push(it);
    else {
      top.push(it);
      counts.set(cat, (counts.get(cat) ?? 0) + 1);
    }
  }
  if (top.length >= limit) return top;
  const out = top.concat(deferred);
  if (out.length >= limit) return out.slice(0, limit);
  while (out.length < limit) {
    const it = order.pop();
    if (!it) break;
    out.push(it);
  }
  return out;
}

/** In-stock items first, then higher scores; ties by position in `items` (as a stable sort). */
function before(a: Scored, ia: number, b: Scored, ib: number, inStock: Uint8Array): boolean {
  return inStock[ia] !== inStock[ib] ? inStock[ia] === 1 : a.score !== b.score ? a.score > b.score : ia < ib;
}

/** A binary heap over `items` in rule order: built in linear time, each pop O(log n). */
class RuleOrder {
  private readonly heap: Int32Array;
  private readonly inStock: Uint8Array;
  private size: number;

  constructor(private readonly items: Scored[]) {
    this.size = items.length;
    this.heap = new Int32Array(items.length);
    this.inStock = new Uint8Array(items.length);
    for (let i = 0; i < items.length; i++) {
      this.heap[i] = i;
      this.inStock[i] = ((items[i] as Scored).item?.inStock ?? true) ? 1 : 0;
    }
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.down(i);
  }

  pop(): Scored | undefined {
    if (this.size === 0) return undefined;
    const first = this.heap[0] as number;
    this.size--;
    if (this.size > 0) {
      this.heap[0] = this.heap[this.size] as number;
      this.down(0);
    }
    return this.items[first];
  }

  private better(x: number, y: number): boolean {
    const a = this.heap[x] as number;
    const b = this.heap[y] as number;
    return before(this.items[a] as Scored, a, this.items[b] as Scored, b, this.inStock);
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) return;
      const r = l + 1;
      const c = r < this.size && this.better(r, l) ? r : l;
      if (!this.better(c, i)) return;
      const t = this.heap[i] as number;
      this.heap[i] = this.heap[c] as number;
      this.heap[c] = t;
      i = c;
    }
  }
}
