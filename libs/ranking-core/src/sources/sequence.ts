import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { Retrieved, ScoredItems, SequenceRetrievalPort } from '../ports';

/** The longest history handed to the sequence model (its trained length). */
export const SEQUENCE_HISTORY = 50;

/** The part of a history handed to the sequence model: its last `SEQUENCE_HISTORY` items. */
export function sequenceTail(history: readonly string[]): readonly string[] {
  return history.length > SEQUENCE_HISTORY ? history.slice(-SEQUENCE_HISTORY) : history;
}

/** Next-item retrieval from the history; nothing (and no degradation) without history or a model port. */
export async function retrieveBySequence(
  ctx: RequestContext,
  port: SequenceRetrievalPort | undefined,
  history: readonly string[],
  k: number,
  exclude: readonly string[],
): Promise<Retrieved | undefined> {
  if (!port || history.length === 0) return undefined;
  const tail = sequenceTail(history);
  const cached = port.peek?.(tail, k, exclude);
  if (cached) return cached;
  return ctx.call(port.dependency ?? 'sequence_retrieval', (b) => port.bySequence(tail, k, exclude, b));
}

/**
 * The top `k` of the retrieval of `shared` items without exclusions (one retrieval, cached once per
 * history, serves every surface); with exclusions, a retrieval of its own.
 */
export async function retrieveTopBySequence(
  ctx: RequestContext,
  port: SequenceRetrievalPort | undefined,
  history: readonly string[],
  k: number,
  exclude: readonly string[],
  shared: number,
): Promise<Retrieved | undefined> {
  if (exclude.length > 0 || k > shared) return retrieveBySequence(ctx, port, history, k, exclude);
  const got = await retrieveBySequence(ctx, port, history, shared, []);
  return got && got.items.length > k ? { ...got, items: got.items.slice(0, k) } : got;
}

/**
 * Rank: the sequence model's scores of exactly the requested items when the port can score items; a
 * top-k retrieval otherwise (requested items outside it get no sequence score).
 */
export async function scoreBySequence(
  ctx: RequestContext,
  port: SequenceRetrievalPort | undefined,
  history: readonly string[],
  itemIds: readonly string[],
  k: number,
): Promise<Retrieved | ScoredItems | undefined> {
  const scoreItems = port?.scoreItems?.bind(port);
  if (!port || !scoreItems || history.length === 0) return retrieveBySequence(ctx, port, history, k, []);
  return ctx.call(port.dependency ?? 'sequence_retrieval', (b) => scoreItems(sequenceTail(history), itemIds, b));
}

/**
 * Adds retrieved items with their score and rank: the rank the port gave (scored items), else the
 * position in the retrieved list (which counts every retrieved item, added or not).
 */
export function addSequenceCandidates(
  ctx: RequestContext,
  out: CandidateSet,
  got: Retrieved | ScoredItems | undefined,
): void {
  if (!got) return;
  ctx.versions.push(`sasrec:${got.version}`);
  const ranks = 'ranks' in got ? got.ranks : undefined;
  got.items.forEach((n, i) => {
    const c = out.add(n.itemId, 'sequence');
    if (!c) return;
    c.seqScore = n.score;
    c.seqRank = ranks?.[i] ?? i;
  });
}
