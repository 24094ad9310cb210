import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { Retrieved, SessionModelPort } from '../ports';

/** The longest session handed to the session model. */
export const SESSION_HISTORY = 50;

/** What comes next in an anonymous session; nothing (and no degradation) without a session model. */
export async function retrieveBySession(
  ctx: RequestContext,
  port: SessionModelPort | undefined,
  sessionItemIds: readonly string[],
  k: number,
): Promise<Retrieved | undefined> {
  if (!port || sessionItemIds.length === 0) return undefined;
  const tail = sessionItemIds.length > SESSION_HISTORY ? sessionItemIds.slice(-SESSION_HISTORY) : sessionItemIds;
  return ctx.call(port.dependency ?? 'session_model', (b) => port.next(tail, k, b));
}

export function addSessionCandidates(ctx: RequestContext, out: CandidateSet, got: Retrieved | undefined): void {
  if (!got) return;
  ctx.versions.push(`session:${got.version}`);
  got.items.forEach((n, i) => {
    const c = out.add(n.itemId, 'session');
    if (!c) return;
    c.sessionScore = n.score;
    c.sessionRank = i;
  });
}
