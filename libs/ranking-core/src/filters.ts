import type { RankingItem, UserProfile } from './ports';
import type { Filters } from './requests';

/** True when `category` is `prefix` or below it ("Beauty" covers "Beauty > Skin Care"). */
export function inCategory(category: string, prefix: string): boolean {
  return category === prefix || (category.startsWith(prefix) && category.startsWith(' > ', prefix.length));
}

/** Whether a catalog item passes the request's filters (items not in the catalog never do). */
export function passesFilters(
  item: RankingItem | undefined,
  f: Filters,
  user: UserProfile | undefined,
  excluded: ReadonlySet<string>,
): item is RankingItem {
  if (!item) return false;
  if (f.inStockOnly && !item.inStock) return false;
  if (f.minPrice !== undefined && item.price < f.minPrice) return false;
  if (f.maxPrice !== undefined && item.price > f.maxPrice) return false;
  if (f.categories.length > 0 && !f.categories.some((c) => inCategory(item.category, c))) return false;
  if (excluded.has(item.itemId)) return false;
  if (f.excludePurchased && user?.purchased.has(item.itemId)) return false;
  return true;
}
