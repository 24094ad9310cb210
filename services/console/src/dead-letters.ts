import { catalogV1, clickstreamV1, DEFAULT_TENANT, splitSubject } from '@aisle/contracts';
import { maySeeTenantOf, type Caller } from './access';
import type { DeadLetterPage, DeadLetterSummary } from './api';

/** The reason without its parenthesized detail ("payload: invalid JSON (Unexpected token x...)"), for grouping. */
export function reasonKind(reason: string): string {
  return (reason.replace(/\s*\(.*\)\s*$/s, '').trim() || '(no reason given)').slice(0, 160);
}

const isProtobuf = (contentType: string) => /protobuf/i.test(contentType);

/**
 * The tenant a rejected payload names (ingest treats a missing tenant as the default one), or null when
 * the bytes do not parse at all: such input belongs to nobody we can name.
 */
export function tenantOf(data: Uint8Array, contentType: string, originalSubject: string): string | null {
  // A tenant's subject (`aisle.clickstream.v1.<type>.<tenant>`, `aisle.catalog.v1.upsert.<tenant>`) binds it.
  const bound =
    splitSubject(originalSubject, 'aisle.clickstream.v1')?.tenant ??
    splitSubject(originalSubject, 'aisle.catalog.v1')?.tenant;
  if (bound !== undefined) return bound;
  try {
    if (isProtobuf(contentType)) {
      const m = originalSubject.startsWith('aisle.catalog.')
        ? catalogV1.Item.decode(data)
        : clickstreamV1.Event.decode(data);
      return m.tenant || DEFAULT_TENANT;
    }
    const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    const t = (parsed as Record<string, unknown>)['tenant'];
    if (t === undefined || t === null || t === '') return DEFAULT_TENANT;
    return typeof t === 'string' ? t : null;
  } catch {
    return null;
  }
}

/** Text and structured views of the original bytes, for the inspector. */
export function describePayload(
  data: Uint8Array,
  contentType: string,
  originalSubject: string,
): { text: string | null; decoded: string | null } {
  let text: string | null = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    text = null;
  }
  try {
    if (isProtobuf(contentType)) {
      const json = originalSubject.startsWith('aisle.catalog.')
        ? catalogV1.Item.toJSON(catalogV1.Item.decode(data))
        : clickstreamV1.Event.toJSON(clickstreamV1.Event.decode(data));
      return { text: null, decoded: JSON.stringify(json, null, 2) };
    }
    return { text, decoded: text === null ? null : JSON.stringify(JSON.parse(text), null, 2) };
  } catch {
    return { text, decoded: null };
  }
}

/** Only producer input is replayed, and only to where producers publish. */
export function replayable(originalSubject: string): boolean {
  return (
    /^aisle\.clickstream\.v1\.[a-z_]+(\.[A-Za-z0-9][A-Za-z0-9_.-]*)?$/.test(originalSubject) ||
    /^aisle\.catalog\.v1\.upsert(\.[A-Za-z0-9][A-Za-z0-9_.-]*)?$/.test(originalSubject)
  );
}

export function toHex(data: Uint8Array, max = 64 * 1024): string {
  return Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, max)).toString('hex');
}

/**
 * The most recent dead letters' metadata (never their bytes), newest last, bounded: browsing by reason
 * needs counts over many messages, which one request could not read from the stream each time.
 */
export class DeadLetterIndex {
  private readonly entries: DeadLetterSummary[] = [];

  constructor(private readonly capacity: number) {}

  add(entry: DeadLetterSummary): void {
    const last = this.entries[this.entries.length - 1];
    if (last && entry.seq <= last.seq) return; // an ordered consumer restarting re-sends what it had
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  get size(): number {
    return this.entries.length;
  }

  get(seq: number): DeadLetterSummary | undefined {
    return this.entries.find((e) => e.seq === seq);
  }

  /**
   * The caller's view of one tenant: that tenant's dead letters plus, for callers allowed every tenant,
   * those whose tenant is unknown. Newest first; `reasonKind` filters the items, not the counts.
   */
  page(
    caller: Caller,
    tenant: string,
    opts: { reasonKind?: string; limit: number; beforeSeq?: number },
  ): DeadLetterPage {
    const visible = this.entries.filter(
      (e) => (e.tenant === tenant || e.tenant === null) && maySeeTenantOf(caller, e.tenant),
    );
    const counts = new Map<string, number>();
    for (const e of visible) counts.set(e.reasonKind, (counts.get(e.reasonKind) ?? 0) + 1);
    const items: DeadLetterSummary[] = [];
    for (let i = visible.length - 1; i >= 0 && items.length < opts.limit; i--) {
      const e = visible[i] as DeadLetterSummary;
      if (opts.reasonKind && e.reasonKind !== opts.reasonKind) continue;
      if (opts.beforeSeq !== undefined && e.seq >= opts.beforeSeq) continue;
      items.push(e);
    }
    return {
      reasons: [...counts].map(([k, count]) => ({ reasonKind: k, count })).sort((a, b) => b.count - a.count),
      total: visible.length,
      items,
    };
  }
}
