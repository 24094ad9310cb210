import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { Neighbor, PopularityPort } from '../ports';

export const POPULAR_PER_LIST = 30;

/** A popular list from memory; stale lists still serve, flagging the answer. */
export function popularIn(
  ctx: RequestContext,
  port: PopularityPort,
  category: string,
  limit = POPULAR_PER_LIST,
): readonly Neighbor[] {
  const stale = port.staleReason?.();
  if (stale) ctx.degrade(port.dependency ?? 'popularity', stale);
  return port.popular(category, limit);
}

/** Adds popular items; `category` '' is the overall list (source `popularity`), else `category_popularity`. */
export function addPopularCandidates(out: CandidateSet, items: readonly Neighbor[], category: string): void {
  const source = category ? 'category_popularity' : 'popularity';
  for (const p of items) {
    const c = out.add(p.itemId, source);
    if (c) c.popularIn ??= category;
  }
}
