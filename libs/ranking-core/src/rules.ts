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
 */
export function applyRules(items: Scored[], context: Record<string, string>, maxPerCategory: number): Scored[] {
  const boostCategory = context['boost_category'];
  const boostBrand = context['boost_brand'];
  for (const it of items) {
    if (boostCategory && it.item?.category.startsWith(boostCategory)) it.score += 1;
    if (boostBrand && it.item?.brand === boostBrand) it.score += 1;
  }
  items.sort((a, b) => Number(b.item?.inStock ?? true) - Number(a.item?.inStock ?? true) || b.score - a.score);
  const top: Scored[] = [];
  const deferred: Scored[] = [];
  const counts = new Map<string, number>();
  for (const it of items) {
    const cat = it.item?.category ?? '';
    if (top.length < DIVERSITY_WINDOW && !(cat && (counts.get(cat) ?? 0) >= maxPerCategory)) {
      top.push(it);
      counts.set(cat, (counts.get(cat) ?? 0) + 1);
    } else deferred.push(it);
  }
  return top.concat(deferred);
}
