import { clickstreamV1 } from '@aisle/contracts';
import {
  validateEventJson,
  validateEventProto,
  validateItemJson,
  normalizeCategory,
  formatOf,
  userNamedBy,
} from './validation';

const now = Date.UTC(2026, 10, 27, 12);
const enc = (o: unknown) => new TextEncoder().encode(typeof o === 'string' ? o : JSON.stringify(o));
const base = {
  event_id: 'e1',
  type: 'view',
  user_id: 'u1',
  item_id: 'i9',
  session_id: 's1',
  occurred_at: '2026-11-27T10:00:00Z',
};

describe('clickstream JSON', () => {
  test('accepts the documented example and normalizes it', () => {
    const r = validateEventJson(enc({ ...base, tenant: 'default' }), now, 'view');
    expect(r).toEqual({
      ok: true,
      value: {
        tenant: 'default',
        eventId: 'e1',
        type: 'view',
        userId: 'u1',
        sessionId: 's1',
        itemId: 'i9',
        query: '',
        quantity: 0,
        price: 0,
        currency: '',
        occurredAt: Date.UTC(2026, 10, 27, 10),
        ingestedAt: now,
        requestId: '',
        position: 0,
        context: {},
      },
    });
  });

  test('accepts camelCase JSON names, numeric strings and takes the type from the subject', () => {
    const r = validateEventJson(
      enc({
        eventId: 'e2',
        userId: 'u1',
        itemId: 'i1',
        occurredAt: '2026-11-27T10:00:00.123+01:00',
        quantity: '3',
        price: '9.99',
      }),
      now,
      'add_to_cart',
    );
    expect(r.ok && r.value).toMatchObject({
      type: 'add_to_cart',
      quantity: 3,
      price: 9.99,
      occurredAt: Date.UTC(2026, 10, 27, 9, 0, 0, 123),
    });
  });

  test('cart and purchase quantities default to 1', () => {
    const r = validateEventJson(enc({ ...base, type: 'purchase', price: 5 }), now, 'purchase');
    expect(r.ok && r.value.quantity).toBe(1);
  });

  test.each([
    [{ ...base, event_id: '' }, 'event_id: required'],
    [{ ...base, user_id: 42 }, 'user_id: must be a string'],
    [{ ...base, item_id: undefined }, 'item_id: required'],
    [{ ...base, session_id: 'x'.repeat(129) }, 'session_id: longer than 128 bytes'],
    [{ ...base, session_id: 'é'.repeat(65) }, 'session_id: longer than 128 bytes'],
    [
      { ...base, user_id: 'a\u0000b' },
      'user_id: contains an unprintable character U+0000 (control, zero-width or bidi)',
    ],
    [{ ...base, user_id: '   ' }, 'user_id: blank'],
    [{ ...base, user_id: '\u3000\u00a0' }, 'user_id: blank'],
    [{ ...base, user_id: '\u200b' }, 'user_id: contains an unprintable character U+200B (control, zero-width or bidi)'],
    [
      { ...base, item_id: 'i\u200d9' },
      'item_id: contains an unprintable character U+200D (control, zero-width or bidi)',
    ],
    [
      { ...base, user_id: 'u\u202e1' },
      'user_id: contains an unprintable character U+202E (control, zero-width or bidi)',
    ],
    [
      { ...base, event_id: '\ufeffe1' },
      'event_id: contains an unprintable character U+FEFF (control, zero-width or bidi)',
    ],
    [
      { ...base, request_id: 'r\u2028' },
      'request_id: contains an unprintable character U+2028 (control, zero-width or bidi)',
    ],
    [{ ...base, user_id: 'u\ufffd' }, 'user_id: not valid UTF-8 (or contains U+FFFD)'],
    [{ ...base, tenant: 'bad tenant!' }, 'tenant: must be letters, digits, _ . -'],
    [{ ...base, occurred_at: undefined }, 'occurred_at: required'],
    [{ ...base, occurred_at: 1764237600000 }, 'occurred_at: must be an RFC 3339 timestamp string'],
    [{ ...base, occurred_at: '2026-11-29T12:00:01Z' }, 'occurred_at: more than 24h in the future'],
    [{ ...base, occurred_at: '1999-12-31T23:59:59Z' }, 'occurred_at: before 2000-01-01'],
    [{ ...base, occurred_at: '2026-02-30T10:00:00Z' }, 'occurred_at: not a valid date'],
    [{ ...base, price: 'Infinity' }, 'price: must be a finite number'],
    [{ ...base, price: -1 }, 'price: must be >= 0'],
    [{ ...base, quantity: 1.5 }, 'quantity: must be an integer'],
    [{ ...base, currency: 'euro' }, 'currency: must be an ISO 4217 code like EUR'],
    [{ ...base, context: { a: 1 } }, 'context.a: must be a string'],
    [
      { ...base, context: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
      'context: more than 32 entries',
    ],
    [{ ...base, userId: 'u1' }, 'user_id: given twice (snake_case and camelCase)'],
    [{ ...base, type: 'search', item_id: undefined }, 'query: required for search'],
  ])('rejects %j with "%s"', (payload, reason) => {
    const subjectType = (payload as { type: string }).type;
    expect(validateEventJson(enc(payload), now, subjectType)).toEqual({ ok: false, reason });
  });

  test('ids of invalid UTF-8 are rejected, not rewritten (distinct byte ids would merge into one)', () => {
    const json = (userIdBytes: number[]) =>
      Uint8Array.from([
        ...enc('{"event_id":"e1","type":"view","item_id":"i9","occurred_at":"2026-11-27T10:00:00Z","user_id":"'),
        ...userIdBytes,
        ...enc('"}'),
      ]);
    for (const bytes of [
      [0x75, 0xff],
      [0x75, 0xfe],
      [0xc3, 0x28],
    ])
      expect(validateEventJson(json(bytes), now)).toEqual({
        ok: false,
        reason: 'user_id: not valid UTF-8 (or contains U+FFFD)',
      });
    // Printable non-ASCII ids are fine, up to 128 bytes.
    expect(validateEventJson(enc({ ...base, user_id: 'Zoë 用户 😀' }), now).ok).toBe(true);
    expect(validateEventJson(enc({ ...base, user_id: 'é'.repeat(64) }), now).ok).toBe(true);
  });

  test('rejects oversize payloads before parsing', () => {
    expect(validateEventJson(new Uint8Array(70_000), now)).toEqual({
      ok: false,
      reason: 'payload: larger than 65536 bytes',
    });
  });

  test('search queries are whitespace-normalized', () => {
    const r = validateEventJson(
      enc({ ...base, type: 'search', item_id: undefined, query: '  Red\t  Shoes ' }),
      now,
      'search',
    );
    expect(r.ok && r.value.query).toBe('Red Shoes');
  });
});

describe('clickstream protobuf', () => {
  test('proto3 defaults count as absent, NaN is rejected', () => {
    const msg = {
      eventId: 'e1',
      tenant: '',
      type: 'view',
      userId: 'u1',
      sessionId: '',
      itemId: 'i1',
      query: '',
      quantity: 0,
      price: 0,
      currency: '',
      occurredAt: new Date(Date.UTC(2026, 10, 27)),
      requestId: '',
      position: 0,
      context: {},
      ingestedAt: undefined,
    };
    expect(validateEventProto(msg, now).ok).toBe(true);
    expect(validateEventProto({ ...msg, price: Number.NaN }, now)).toEqual({
      ok: false,
      reason: 'price: must be a finite number',
    });
    expect(validateEventProto({ ...msg, occurredAt: undefined }, now)).toEqual({
      ok: false,
      reason: 'occurred_at: required',
    });
    // A purchase price cannot be told from 0 in binary proto3, so it is not required there.
    expect(validateEventProto({ ...msg, type: 'purchase' }, now).ok).toBe(true);
  });
});

describe('catalog items', () => {
  test('normalizes categories and defaults in_stock to true', () => {
    const r = validateItemJson(
      enc({ item_id: 'i1', title: ' Soap ', category: 'Beauty>  Bath &  Body >', price: 3 }),
      now,
    );
    expect(r.ok && r.value).toMatchObject({
      title: 'Soap',
      category: 'Beauty > Bath & Body',
      inStock: true,
      updatedAt: now,
    });
  });
  test.each([
    [{ title: 'x' }, 'item_id: required'],
    [{ item_id: 'i1' }, 'title: required'],
    [{ item_id: 'i1', title: 'x', in_stock: 'yes' }, 'in_stock: must be true or false'],
    [{ item_id: 'i1', title: 'x', price: 'NaN' }, 'price: must be a finite number'],
    [{ item_id: 'i1', title: 'x', attributes: { color: ['red'] } }, 'attributes.color: must be a string'],
  ])('rejects %j with "%s"', (payload, reason) => {
    expect(validateItemJson(enc(payload), now)).toEqual({ ok: false, reason });
  });
  test('normalizeCategory', () => {
    expect(normalizeCategory(' A >B>  > C ')).toBe('A > B > C');
  });
});

test('formatOf reads Content-Type', () => {
  expect(formatOf(undefined)).toBe('json');
  expect(formatOf('application/x-protobuf')).toBe('protobuf');
  expect(formatOf('application/json; charset=utf-8')).toBe('json');
  expect(formatOf('text/csv')).toEqual({ unsupported: 'text/csv' });
});

test('rejected input is attributed to the user it names, however malformed (forgetting the user must find it)', () => {
  const decode = (d: Uint8Array) => clickstreamV1.Event.decode(d) as unknown as Record<string, unknown>;
  // Invalid (unknown type, unknown field) but a JSON object: its user and tenant.
  expect(userNamedBy(enc({ ...base, type: 'bogus', extra: 1, tenant: 'shop' }), undefined, undefined, decode)).toEqual({
    tenant: 'shop',
    userId: 'u1',
  });
  // The subject's tenant binds; camelCase and numeric ids count.
  expect(userNamedBy(enc({ userId: 42, tenant: 'other' }), 'application/json', 'shop', decode)).toEqual({
    tenant: 'shop',
    userId: '42',
  });
  // Not JSON at all: a "user_id": "..." pair in the text, escapes decoded.
  expect(userNamedBy(enc('{"event_id": "e1", "user_id": "u\\"2", oops'), undefined, undefined, decode)).toEqual({
    tenant: 'default',
    userId: 'u"2',
  });
  // A protobuf Event that fails validation.
  const proto = clickstreamV1.Event.encode(clickstreamV1.Event.fromPartial({ userId: 'u3', type: 'nope' })).finish();
  expect(userNamedBy(proto, 'application/x-protobuf', 't', decode)).toEqual({ tenant: 't', userId: 'u3' });
  // Nothing to read: no user.
  expect(userNamedBy(enc({ event_id: 'e1' }), undefined, undefined, decode)).toBeUndefined();
  expect(userNamedBy(enc('garbage'), undefined, undefined, decode)).toBeUndefined();
  expect(userNamedBy(new Uint8Array([0xff, 0xff, 0xff]), 'application/x-protobuf', 't', decode)).toBeUndefined();
});
