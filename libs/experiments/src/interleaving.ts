import { uniformHash } from './assignment';

/**
 * Team-draft interleaving (Radlinski, Kurup and Joachims, CIKM 2008; validated at scale by Chapelle,
 * Joachims, Radlinski and Yue, TOIS 2012). Each round, a coin decides which team picks first; each team
 * then adds its highest-ranked item not yet in the merged list. An item both lists contain is shown once,
 * on the team that picked it first; the other team moves on to its next item. Clicks (or purchases) are
 * credited to the team of the item; a request is a win for the team with more credited events, a tie when
 * both have the same non-zero number, and carries no information without any.
 */

export interface InterleavedItem {
  itemId: string;
  /** The team (arm name) that contributed the item. */
  team: string;
}

export interface Team<T> {
  name: string;
  items: readonly T[];
}

/** The team of items that fill a list after one team ran out: shown, but credited to neither team. */
export const NO_TEAM = '';

/**
 * Merges two ranked lists by team draft, up to `limit` items. The draft stops when a team has nothing new
 * to add (as in the original algorithm: its rival would otherwise score unopposed); the rest of the list is
 * filled from the other list with `NO_TEAM` items, so a short list never shortens the response.
 * `coin(round)` is a fair bit per round; derive it from the request id (see `requestCoin`) so that the
 * merge can be reproduced.
 */
export function teamDraft<T extends { itemId: string }>(
  a: Team<T>,
  b: Team<T>,
  limit: number,
  coin: (round: number) => boolean,
): Array<T & { team: string }> {
  const out: Array<T & { team: string }> = [];
  const taken = new Set<string>();
  let ia = 0;
  let ib = 0;
  let teamA = 0;
  let teamB = 0;
  const next = (list: readonly T[], from: number): number => {
    let i = from;
    while (i < list.length && taken.has((list[i] as T).itemId)) i++;
    return i;
  };
  let round = 0;
  while (out.length < limit) {
    ia = next(a.items, ia);
    ib = next(b.items, ib);
    const aLeft = ia < a.items.length;
    const bLeft = ib < b.items.length;
    // A round starts only when both teams can pick (no unopposed picks); inside a round the team with
    // fewer picks completes it if it can. At the start of a round a coin decides who picks first.
    let aFirst: boolean;
    if (teamA === teamB) {
      if (!aLeft || !bLeft) break;
      aFirst = coin(round++);
    } else {
      aFirst = teamA < teamB;
      if (aFirst ? !aLeft : !bLeft) break;
    }
    const item = aFirst ? (a.items[ia] as T) : (b.items[ib] as T);
    out.push({ ...item, team: aFirst ? a.name : b.name });
    taken.add(item.itemId);
    if (aFirst) teamA++;
    else teamB++;
  }
  for (const item of [...a.items.slice(ia), ...b.items.slice(ib)]) {
    if (out.length >= limit) break;
    if (taken.has(item.itemId)) continue;
    out.push({ ...item, team: NO_TEAM });
    taken.add(item.itemId);
  }
  return out;
}

/** A fair, reproducible coin per round of one request. */
export function requestCoin(salt: string, requestId: string): (round: number) => boolean {
  return (round) => uniformHash(salt, requestId, 'round', String(round)) < 0.5;
}

export type InterleavingOutcome = 'a' | 'b' | 'tie' | 'none';

/** The outcome of one request from the events credited to each team. */
export function interleavingOutcome(creditA: number, creditB: number): InterleavingOutcome {
  if (creditA === 0 && creditB === 0) return 'none';
  if (creditA > creditB) return 'a';
  if (creditB > creditA) return 'b';
  return 'tie';
}
