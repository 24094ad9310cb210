import type { RankingItem } from './ports';

export interface Scored {
  itemId: string;
  score: number;
  /** Undefined for items not in the catalog (Rank keeps them). */
  item: RankingItem | undefined;
  row: number;
}

/** How many of the first positions the diversity rule looks at. */
export const DIVERSITY_WINDOW = 10;

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
