import type { Candidate } from './candidates';
import type { CatalogPort, RankingItem, UserProfile } from './ports';

const leaf = (category: string) => category.split(' > ').pop() ?? category;

/** Human-readable reasons for one served item, strongest first. */
export function reasonsFor(
  c: Candidate,
  item: RankingItem | undefined,
  user: UserProfile | undefined,
  catalog: CatalogPort,
): string[] {
  if (!item) return ['not in the catalog'];
  const out: string[] = [];
  if (c.terms?.length) out.push(`matches ${c.terms.map((t) => `'${t}'`).join(', ')}`);
  else if (c.textScore !== undefined && c.lexical === undefined) out.push('similar in meaning to your search');
  if (c.covisVia) out.push(`often viewed with "${catalog.get(c.covisVia)?.title ?? c.covisVia}"`);
  if (c.seqRank !== undefined && c.seqRank < 20) out.push('picked for you from your recent activity');
  if (c.sessionRank !== undefined && c.sessionRank < 20) out.push('often viewed next in sessions like this one');
  if (out.length < 2 && user?.affinity.some((a) => a.category === item.category && a.score > 0))
    out.push(`you often browse ${leaf(item.category)}`);
  if (c.popularIn !== undefined) out.push(c.popularIn ? `popular in ${leaf(c.popularIn)}` : 'popular right now');
  return out.length > 0 ? out : ['matches your request'];
}
