import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { CoVisitationPort, Neighbor } from '../ports';

/** How many of the most recent distinct items seed co-visitation, and how many neighbours each. */
export const COVISIT_SEEDS = 5;
export const COVISIT_PER_SEED = 30;
/** What a user context is asked for: the co-visits of the seeds with it. */
export const USER_CONTEXT_OPTIONS = { coVisitItems: COVISIT_SEEDS, coVisitLimit: COVISIT_PER_SEED } as const;

/**
 * Rank scores given items rather than proposing any: each requested item's co-visitation score counts
 * the user's last `seeds` distinct items, each seed's stored list (the store's whole list, not the 30
 * Recommend proposes) and, where a seed's list stops before the item, the item's own list naming the
 * seed. Cutting seed lists at 30 lost most of co-visitation's signal under Rank (docs/ml.md).
 */
export const COVISIT_RANK = { seeds: 10, perItem: 100 } as const;

/** The most recent distinct items of a history (oldest first), most recent first. */
export function recentDistinct(history: readonly string[], n = COVISIT_SEEDS): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = history.length - 1; i >= 0 && out.length < n; i--) {
    const id = history[i] as string;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

/**
 * Co-visits of the seeds that `known` (the user context) does not already hold, from the port; merged
 * with `known`.
 */
export async function coVisitsOf(
  ctx: RequestContext,
  port: CoVisitationPort,
  seeds: readonly string[],
  known: ReadonlyMap<string, readonly Neighbor[]>,
  limit: number,
): Promise<ReadonlyMap<string, readonly Neighbor[]>> {
  const missing = seeds.filter((id) => !known.has(id));
  if (missing.length === 0) return known;
  const got =
    port.peek?.(missing, limit) ??
    (await ctx.call(port.dependency ?? 'co_visitation', (b) => port.coVisited(missing, limit, b)));
  if (!got || got.size === 0) return known;
  const merged = new Map(known);
  for (const [id, list] of got) merged.set(id, list);
  return merged;
}

/**
 * Adds co-visited items of the seeds (most recent first). More recent seeds weigh more (1 / (rank + 1));
 * each candidate remembers its strongest seed for the reason; ranks are over every co-visited item.
 */
export function addCoVisitCandidates(
  out: CandidateSet,
  seeds: readonly string[],
  coVisits: ReadonlyMap<string, readonly Neighbor[]>,
): void {
  interface Scored {
    id: string;
    score: number;
    best: number;
    via: string;
    rank: number;
  }
  const scores = new Map<string, Scored>();
  const seen: Scored[] = [];
  seeds.forEach((seed, r) => {
    const weight = 1 / (r + 1);
    for (const n of coVisits.get(seed) ?? []) {
      if (n.itemId === seed) continue;
      const s = weight * n.score;
      const e = scores.get(n.itemId);
      if (!e) {
        const added = { id: n.itemId, score: s, best: s, via: seed, rank: -1 };
        scores.set(n.itemId, added);
        seen.push(added);
      } else {
        e.score += s;
        if (s > e.best) {
          e.best = s;
          e.via = seed;
        }
      }
    }
  });
  // Ranks from the order by score (ties in first-seen order); added in first-seen order (the order
  // candidates had before).
  const ranked = seen.filter((e) => e.score > 0).sort((a, b) => b.score - a.score);
  ranked.forEach((e, i) => (e.rank = i));
  for (const e of seen) {
    const c = out.add(e.id, 'co_visit');
    if (!c) continue;
    c.covisScore += e.score;
    if (e.best > 0) c.covisVia = e.via;
    if (e.rank >= 0) c.covisRank = e.rank;
  }
}

/**
 * Rank: the seeds' lists completed with the requested items whose own list names the seed (the pair
 * counted from the other side) when the seed's list does not reach them; `lists` holds both the seeds'
 * and the requested items' lists.
 */
export function completedSeedLists(
  seeds: readonly string[],
  itemIds: readonly string[],
  lists: ReadonlyMap<string, readonly Neighbor[]>,
): Map<string, readonly Neighbor[]> {
  const out = new Map<string, readonly Neighbor[]>();
  const seedSet = new Set(seeds);
  const requested = [...new Set(itemIds)].filter((id) => !seedSet.has(id));
  // One lookup per (seed, requested item) in each list's index (built once per list and kept with it:
  // cached lists are the same arrays from request to request), not one per neighbour of every list.
  const indexes = requested.map((id) => scoreIndex(lists.get(id)));
  for (const s of seeds) {
    const own = lists.get(s) ?? [];
    const listed = scoreIndex(own);
    let more: Neighbor[] | undefined;
    requested.forEach((id, i) => {
      const score = indexes[i]?.get(s);
      if (score === undefined || listed.has(id)) return;
      (more ??= []).push({ itemId: id, score });
    });
    out.set(s, more ? [...own, ...more].sort((a, b) => b.score - a.score) : own);
  }
  return out;
}

const NO_INDEX: ReadonlyMap<string, number> = new Map();
const indexes = new WeakMap<readonly Neighbor[], ReadonlyMap<string, number>>();

/** A list's scores by item (the first where an item is named twice), memoized per list. */
function scoreIndex(list: readonly Neighbor[] | undefined): ReadonlyMap<string, number> {
  if (!list || list.length === 0) return NO_INDEX;
  let index = indexes.get(list);
  if (!index) {
    const m = new Map<string, number>();
    for (const n of list) if (!m.has(n.itemId)) m.set(n.itemId, n.score);
    indexes.set(list, (index = m));
  }
  return index;
}
