import type { Event } from '@aisle/contracts';
import { FEEDBACK_GAIN, type LabelledQuery } from '@aisle/ml';

/**
 * Search feedback from the clickstream: which items shoppers chose after which query. A `search` event
 * and the clicks, add-to-carts and purchases that carry the same `request_id` (the Search response they
 * followed) are joined; without request ids, the first item a session opens after a search (within
 * `windowMs`) is that search's click. Per query text (normalized), each item keeps its
 * strongest grade: click 1, add to cart 2, purchase 3.
 */
/** What search feedback reads of an event (its type as the stored string; `requestId` when known). */
export type FeedbackEvent = Pick<Event, 'userId' | 'sessionId' | 'itemId' | 'query' | 'occurredAt'> & {
  type: string;
  requestId?: string | undefined;
};

const GRADED: Record<string, number> = { view: 1, ...FEEDBACK_GAIN };

export function normalizeQuery(q: string): string {
  return q.trim().toLowerCase().replace(/\s+/g, ' ');
}

export function searchFeedback(events: readonly FeedbackEvent[], windowMs = 30 * 60_000): LabelledQuery[] {
  const byRequest = new Map<string, string>();
  /** Per session: the last search, and the items credited to it so far. */
  const lastSearch = new Map<string, { query: string; at: number; items: Set<string> }>();
  const gains = new Map<string, Map<string, number>>();
  const credit = (query: string, itemId: string, gain: number) => {
    let m = gains.get(query);
    if (!m) gains.set(query, (m = new Map<string, number>()));
    m.set(itemId, Math.max(m.get(itemId) ?? 0, gain));
  };
  const sorted = [...events].sort((a, b) => a.occurredAt - b.occurredAt);
  for (const e of sorted) {
    const session = `${e.userId}\u001f${e.sessionId}`;
    if (e.type === 'search') {
      const q = normalizeQuery(e.query);
      if (!q) continue;
      if (e.requestId) byRequest.set(e.requestId, q);
      lastSearch.set(session, { query: q, at: e.occurredAt, items: new Set() });
      continue;
    }
    const gain = GRADED[e.type];
    if (gain === undefined || !e.itemId) continue;
    const viaRequest = e.requestId ? byRequest.get(e.requestId) : undefined;
    if (viaRequest) {
      // A view is what a click on a result leads to; as feedback it is a click.
      credit(viaRequest, e.itemId, gain);
      continue;
    }
    if (e.requestId) continue; // It followed another surface's response (recommendations).
    // Without a request id: the first item opened after the search is its click; carting or buying that
    // item later in the window grades it up. Browsing on from there is not credited to the query.
    const s = lastSearch.get(session);
    if (!s || e.occurredAt - s.at > windowMs) continue;
    if (s.items.size === 0 && (e.type === 'view' || e.type === 'click')) s.items.add(e.itemId);
    if (s.items.has(e.itemId)) credit(s.query, e.itemId, gain);
  }
  return [...gains].map(([text, g]) => ({ text, gains: g }));
}
