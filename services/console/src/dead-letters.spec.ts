import { clickstreamV1 } from '@aisle/contracts';
import { openCaller, resolveCaller, parseAccessFile } from './access';
import type { DeadLetterSummary } from './api';
import { DeadLetterIndex, describePayload, reasonKind, replayable, tenantOf } from './dead-letters';

const enc = (s: string) => new TextEncoder().encode(s);

function letter(seq: number, tenant: string | null, reason: string): DeadLetterSummary {
  return {
    seq,
    at: seq * 1000,
    subject: 'aisle.dlq.v1.clickstream',
    originalSubject: 'aisle.clickstream.v1.view',
    reason,
    reasonKind: reasonKind(reason),
    rejectedBy: 'ingest',
    tenant,
    size: 10,
    contentType: 'application/json',
  };
}

describe('dead letters', () => {
  it('groups reasons without their quoted detail', () => {
    expect(reasonKind('payload: invalid JSON (Unexpected token x in JSON at position 0)')).toBe(
      'payload: invalid JSON',
    );
    expect(reasonKind('user_id: required')).toBe('user_id: required');
    expect(reasonKind('')).toBe('(no reason given)');
  });

  it('reads the tenant from JSON and protobuf payloads, and null from garbage', () => {
    expect(tenantOf(enc('{"tenant":"shop-a","type":"view"}'), 'application/json', 'aisle.clickstream.v1.view')).toBe(
      'shop-a',
    );
    expect(tenantOf(enc('{"type":"view"}'), '', 'aisle.clickstream.v1.view')).toBe('default');
    expect(tenantOf(enc('x\r\nnot json'), '', 'aisle.clickstream.v1.view')).toBeNull();
    expect(tenantOf(enc('{"tenant":"shop-a"}'), 'application/json', 'aisle.clickstream.v1.view.shop-b')).toBe('shop-b');
    expect(tenantOf(enc('{"tenant":42}'), '', 'aisle.clickstream.v1.view')).toBeNull();
    const proto = clickstreamV1.Event.encode(
      clickstreamV1.Event.fromPartial({ tenant: 'shop-b', eventId: 'e1' }),
    ).finish();
    expect(tenantOf(proto, 'application/x-protobuf', 'aisle.clickstream.v1.view')).toBe('shop-b');
    expect(describePayload(proto, 'application/x-protobuf', 'aisle.clickstream.v1.view').decoded).toContain(
      '"eventId": "e1"',
    );
  });

  it('replays only to producer subjects', () => {
    expect(replayable('aisle.clickstream.v1.view')).toBe(true);
    expect(replayable('aisle.catalog.v1.upsert')).toBe(true);
    expect(replayable('aisle.events.v1.view')).toBe(false);
    // A tenant's subjects too (the tenant is bound by the subject then).
    expect(replayable('aisle.clickstream.v1.view.shop-a')).toBe(true);
    expect(replayable('aisle.catalog.v1.upsert.shop-a')).toBe(true);
    expect(replayable('aisle.clickstream.v1.view.bad tenant')).toBe(false);
    expect(replayable('aisle.catalog.v1.delete')).toBe(false);
    expect(replayable('')).toBe(false);
  });

  it('pages newest first per tenant, counts reasons, and hides unknown-tenant input from narrow callers', () => {
    const index = new DeadLetterIndex(4);
    index.add(letter(1, 'shop-a', 'user_id: required'));
    index.add(letter(2, 'shop-a', 'user_id: required'));
    index.add(letter(3, 'shop-b', 'type: unknown'));
    index.add(letter(4, null, 'payload: invalid JSON (x)'));
    index.add(letter(5, 'shop-a', 'occurred_at: in the future'));
    index.add(letter(5, 'shop-a', 'again')); // a restarted reader re-sends
    expect(index.size).toBe(4); // capacity drops the oldest
    const all = openCaller(['shop-a', 'shop-b']);
    const page = index.page(all, 'shop-a', { limit: 10 });
    expect(page.items.map((i) => i.seq)).toEqual([5, 4, 2]);
    expect(page.reasons).toEqual(
      [
        { reasonKind: 'user_id: required', count: 1 },
        { reasonKind: 'payload: invalid JSON', count: 1 },
        { reasonKind: 'occurred_at: in the future', count: 1 },
      ].sort((a, b) => b.count - a.count),
    );
    expect(
      index.page(all, 'shop-a', { limit: 10, reasonKind: 'payload: invalid JSON' }).items.map((i) => i.seq),
    ).toEqual([4]);
    const narrow = resolveCaller(
      parseAccessFile({ grants: [{ subject: 'user:a', tenants: ['shop-a'], role: 'viewer' }] }),
      ['shop-a', 'shop-b'],
      'a',
      [],
    );
    expect(index.page(narrow, 'shop-a', { limit: 10 }).items.map((i) => i.seq)).toEqual([5, 2]);
    expect(index.page(narrow, 'shop-b', { limit: 10 }).items).toEqual([]);
  });
});
