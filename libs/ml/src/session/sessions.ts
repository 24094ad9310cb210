import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Anonymous sessions with a dense item vocabulary: item index 0 is unused, 1..numItems are items.
 * Training sessions are in time order (oldest first); that order is the only clock the models use.
 */
export interface SessionData {
  /** External item ids; `itemIds[0]` is ''. */
  readonly itemIds: string[];
  readonly train: Int32Array[];
  /** Test cases: a prefix of a session and the item that followed it (line order of test_pairs.tsv). */
  readonly test: SessionCase[];
}

export interface SessionCase {
  prefix: Int32Array;
  target: number;
}

export function numSessionItems(d: { itemIds: readonly string[] }): number {
  return d.itemIds.length - 1;
}

/**
 * A session log folder: `train_sessions.txt` (one session a line, item ids in time order, sessions in time
 * order) and `test_pairs.tsv` ("prefix item ids<TAB>next item id", one test case a line). Test items never
 * seen in training get index 0 (no model can score them; they still count as misses).
 */
export function readSessionDir(dir: string): SessionData {
  const itemIds = [''];
  const index = new Map<string, number>();
  const known = (id: string) => index.get(id) ?? 0;
  const intern = (id: string) => {
    let i = index.get(id);
    if (i === undefined) {
      i = itemIds.length;
      itemIds.push(id);
      index.set(id, i);
    }
    return i;
  };
  const train: Int32Array[] = [];
  for (const line of readFileSync(join(dir, 'train_sessions.txt'), 'utf8').split('\n')) {
    const ids = line.trim().split(/\s+/).filter(Boolean);
    if (ids.length > 0) train.push(Int32Array.from(ids, intern));
  }
  const test: SessionCase[] = [];
  let lineNo = 0;
  for (const line of readFileSync(join(dir, 'test_pairs.tsv'), 'utf8').split('\n')) {
    lineNo++;
    if (!line.trim()) continue;
    const [prefix, target] = line.split('\t');
    if (prefix === undefined || target === undefined || !target.trim())
      throw new Error(`${dir}/test_pairs.tsv line ${lineNo}: expected "prefix<TAB>next item"`);
    test.push({
      prefix: Int32Array.from(prefix.trim().split(/\s+/).filter(Boolean), known),
      target: known(target.trim()),
    });
  }
  return { itemIds, train, test };
}

/** Every prefix of every session with its next item, as SR-GNN builds its training and test cases. */
export function sessionCases(sessions: readonly Int32Array[]): SessionCase[] {
  const out: SessionCase[] = [];
  for (const s of sessions)
    for (let cut = s.length - 1; cut >= 1; cut--) out.push({ prefix: s.subarray(0, cut), target: s[cut] as number });
  return out;
}

/**
 * The validation split: the latest `share` of the training sessions (they are in time order), cut into
 * prefix cases like the test set, with items unseen in the earlier sessions dropped (the test set keeps
 * only items seen in training). Models for validation are fit on the earlier sessions only.
 */
export function validationSplit(
  train: readonly Int32Array[],
  share: number,
): { fit: Int32Array[]; cases: SessionCase[]; sessions: number } {
  const cut = Math.max(1, Math.min(train.length - 1, Math.round(train.length * (1 - share))));
  const fit = train.slice(0, cut);
  const seen = new Set<number>();
  for (const s of fit) for (const i of s) seen.add(i);
  const later = train
    .slice(cut)
    .map((s) => Int32Array.from([...s].filter((i) => seen.has(i))))
    .filter((s) => s.length >= 2);
  return { fit, cases: sessionCases(later), sessions: later.length };
}

/** A shop event as far as sessions are concerned. */
export interface SessionEvent {
  userId: string;
  sessionId: string;
  itemId: string;
  type: string;
  occurredAt: number;
}

/** Events further apart than this (same user, same or no session id) start a new session. */
export const SESSION_GAP_MS = 30 * 60_000;

/**
 * A shop's item interactions cut into sessions, as the session models read them: the items of each
 * (user, session id) in time order, with a new session after `SESSION_GAP_MS` of silence (events without
 * a session id are cut by that gap alone), an item repeated right after itself counted once (a view
 * then an add-to-cart of the same item is one step), sessions of one item dropped (SR-GNN's rule), and
 * sessions ordered by their start, oldest first.
 */
export function sessionsFromEvents(
  events: Iterable<SessionEvent>,
  opts: { types?: readonly string[] } = {},
): string[][] {
  const types = new Set(opts.types ?? ['view', 'click', 'add_to_cart', 'purchase']);
  const sorted = [...events].filter((e) => e.itemId && types.has(e.type)).sort((a, b) => a.occurredAt - b.occurredAt);
  const open = new Map<string, { items: string[]; start: number; last: number }>();
  const done: Array<{ items: string[]; start: number }> = [];
  for (const e of sorted) {
    const key = `${e.userId}\u001f${e.sessionId}`;
    let s = open.get(key);
    if (s && e.occurredAt - s.last > SESSION_GAP_MS) {
      done.push(s);
      s = undefined;
    }
    if (!s) open.set(key, (s = { items: [], start: e.occurredAt, last: e.occurredAt }));
    if (s.items[s.items.length - 1] !== e.itemId) s.items.push(e.itemId);
    s.last = e.occurredAt;
  }
  done.push(...open.values());
  return done
    .filter((s) => s.items.length >= 2)
    .sort((a, b) => a.start - b.start)
    .map((s) => s.items);
}

/**
 * Sessions of external item ids as item indices. Without `itemIds` every item is interned (index 0
 * stays ''); with them, unknown items are dropped from the sessions.
 */
export function internSessions(
  sessions: readonly string[][],
  itemIds?: readonly string[],
): { itemIds: string[]; sessions: Int32Array[] } {
  const ids = itemIds ? [...itemIds] : [''];
  const index = new Map(ids.map((id, i) => [id, i]));
  const out = sessions.map((s) => {
    const got: number[] = [];
    for (const id of s) {
      let i = index.get(id);
      if (i === undefined && !itemIds) {
        i = ids.length;
        ids.push(id);
        index.set(id, i);
      }
      if (i !== undefined && i > 0) got.push(i);
    }
    return Int32Array.from(got);
  });
  return { itemIds: ids, sessions: out };
}
