import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { CoVisitationPort, Neighbor } from '../ports';

/** How many of the most recent distinct items seed co-visitation, and how many neighbours each. */
export const COVISIT_SEEDS = 5;
export const COVISIT_PER_SEED = 30;

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
  const scores = new Map<string, { score: number; best: number; via: string }>();
  seeds.forEach((seed, r) => {
    const weight = 1 / (r + 1);
    for (const n of coVisits.get(seed) ?? []) {
      if (n.itemId === seed) continue;
      const s = weight * n.score;
      const e = scores.get(n.itemId);
      if (!e) scores.set(n.itemId, { score: s, best: s, via: seed });
      else {
        e.score += s;
        if (s > e.best) {
          e.best = s;
          e.via = seed;
        }
      }
    }
  });
  const ranked = [...scores].filter(([, e]) => e.score > 0).sort((a, b) => b[1].score - a[1].score);
  // Added in first-seen order (the order candidates had before), ranks from the sorted list.
  const rankOf = new Map(ranked.map(([id], i) => [id, i]));
  for (const [id, e] of scores) {
    const c = out.add(id, 'co_visit');
    if (!c) continue;
    c.covisScore += e.score;
    if (e.best > 0) c.covisVia = e.via;
    const rank = rankOf.get(id);
    if (rank !== undefined) c.covisRank = rank;
  }
}
