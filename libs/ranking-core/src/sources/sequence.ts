import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { Retrieved, SequenceRetrievalPort } from '../ports';

/** The longest history handed to the sequence model (its trained length). */
export const SEQUENCE_HISTORY = 50;

/** Next-item retrieval from the history; nothing (and no degradation) without history or a model port. */
export async function retrieveBySequence(
  ctx: RequestContext,
  port: SequenceRetrievalPort | undefined,
  history: readonly string[],
  k: number,
  exclude: readonly string[],
): Promise<Retrieved | undefined> {
  if (!port || history.length === 0) return undefined;
  const tail = history.length > SEQUENCE_HISTORY ? history.slice(-SEQUENCE_HISTORY) : history;
  return ctx.call(port.dependency ?? 'sequence_retrieval', (b) => port.bySequence(tail, k, exclude, b));
}

/** Adds retrieved items with their score and rank (rank counts every retrieved item, added or not). */
export function addSequenceCandidates(ctx: RequestContext, out: CandidateSet, got: Retrieved | undefined): void {
  if (!got) return;
  ctx.versions.push(`sasrec:${got.version}`);
  got.items.forEach((n, i) => {
    const c = out.add(n.itemId, 'sequence');
    if (!c) return;
    c.seqScore = n.score;
    c.seqRank = i;
  });
}
