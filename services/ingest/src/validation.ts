import { DEFAULT_TENANT, EVENT_TYPES, isEventType, type Event, type Item } from '@aisle/contracts';

/**
 * Validation and normalization of producer input. Every rejection names the field and the rule, in the
 * form "<field>: <rule>", so that producers can fix their code from the dead-letter header alone.
 */

export const LIMITS = {
  payloadBytes: 64 * 1024,
  id: 128,
  tenant: 64,
  query: 512,
  title: 512,
  description: 20_000,
  category: 512,
  brand: 128,
  contextEntries: 32,
  contextKey: 64,
  contextValue: 256,
  quantity: 100_000,
  price: 1e9,
  position: 10_000,
  futureSkewMs: 24 * 60 * 60 * 1000,
  earliest: Date.UTC(2000, 0, 1),
} as const;

export type NormalizedEvent = Event;

export type NormalizedItem = Item;

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

class Rejection extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const reject = (field: string, rule: string): never => {
  throw new Rejection(`${field}: ${rule}`);
};

// Proto3 JSON accepts both the proto field name and its lowerCamelCase JSON name.
function aliases(names: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of names) {
    m.set(n, n);
    m.set(
      n.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
      n,
    );
  }
  return m;
}

const EVENT_FIELDS = aliases([
  'event_id',
  'tenant',
  'type',
  'user_id',
  'session_id',
  'item_id',
  'query',
  'quantity',
  'price',
  'currency',
  'occurred_at',
  'request_id',
  'position',
  'context',
]);
const ITEM_FIELDS = aliases([
  'item_id',
  'tenant',
  'title',
  'description',
  'category',
  'brand',
  'price',
  'in_stock',
  'attributes',
  'updated_at',
]);

type Fields = Map<string, unknown>;

/** Parses a JSON payload into canonical (snake_case) field names, rejecting unknown and repeated fields. */
function jsonFields(data: Uint8Array, known: Map<string, string>): Fields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (err) {
    // V8 quotes the start of the text ("Unexpected token 'x', "xx{..." is not valid JSON"): the reason goes to
    // a header and a log, so it names the fault, never the payload (which may name the shopper).
    const message = (err instanceof Error ? err.message : String(err)).replace(/, "[\s\S]*" is not valid JSON$/, '');
    return reject('payload', `invalid JSON (${message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return reject('payload', 'must be a JSON object');
  const out: Fields = new Map();
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const canonical = known.get(k);
    if (!canonical) return reject(k.slice(0, 64), 'unknown field');
    if (out.has(canonical)) return reject(canonical, 'given twice (snake_case and camelCase)');
    if (v !== null) out.set(canonical, v);
  }
  return out;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_ALL = /[\u0000-\u001f\u007f]/g;

function str(
  f: Fields,
  name: string,
  opts: { required?: boolean; max: number; pattern?: RegExp; patternRule?: string; allowControl?: boolean },
): string {
  const v = f.get(name);
  if (v === undefined || v === '') {
    if (opts.required) return reject(name, 'required');
    return '';
  }
  if (typeof v !== 'string') return reject(name, 'must be a string');
  if (v.length > opts.max) return reject(name, `longer than ${opts.max} characters`);
  if (!opts.allowControl && CONTROL.test(v)) return reject(name, 'contains control characters');
  if (opts.pattern && !opts.pattern.test(v))
    return reject(name, opts.patternRule ?? `must match ${String(opts.pattern)}`);
  return v;
}

// Ids are compared byte for byte everywhere downstream, so they must arrive as sent and look like what
// they are: no U+FFFD (what a decoder makes of invalid UTF-8, which would merge distinct byte ids), no
// controls, format characters (zero-width spaces and joiners, bidi overrides), private-use or
// unpaired surrogate code points, line/paragraph separators; not only whitespace; at most 128 bytes.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;
const BLANK = /^\s+$/u;

function id(f: Fields, name: string, opts: { required?: boolean } = {}): string {
  const v = f.get(name);
  if (v === undefined || v === '') {
    if (opts.required) return reject(name, 'required');
    return '';
  }
  if (typeof v !== 'string') return reject(name, 'must be a string');
  if (v.includes('\uFFFD')) return reject(name, 'not valid UTF-8 (or contains U+FFFD)');
  if (Buffer.byteLength(v, 'utf8') > LIMITS.id) return reject(name, `longer than ${LIMITS.id} bytes`);
  const bad = UNPRINTABLE.exec(v)?.[0];
  if (bad !== undefined) {
    const code = (bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return reject(name, `contains an unprintable character U+${code} (control, zero-width or bidi)`);
  }
  if (BLANK.test(v)) return reject(name, 'blank');
  return v;
}

/** Numbers may come as JSON numbers or, per proto3 JSON, as strings; "NaN" and "Infinity" are rejected. */
function num(f: Fields, name: string, opts: { integer?: boolean; min: number; max: number }): number | undefined {
  const v = f.get(name);
  if (v === undefined) return undefined;
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && v.trim() !== '') n = Number(v);
  else return reject(name, 'must be a number');
  if (!Number.isFinite(n)) return reject(name, 'must be a finite number');
  if (opts.integer && !Number.isInteger(n)) return reject(name, 'must be an integer');
  if (n < opts.min) return reject(name, `must be >= ${opts.min}`);
  if (n > opts.max) return reject(name, `must be <= ${opts.max}`);
  return n;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Date.parse rolls 2026-02-30 over to March; real producers' bugs should not be silently "fixed". */
function calendarValid(v: string): boolean {
  const [y, mo, d, h, mi, se] = [
    v.slice(0, 4),
    v.slice(5, 7),
    v.slice(8, 10),
    v.slice(11, 13),
    v.slice(14, 16),
    v.slice(17, 19),
  ].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth && h <= 23 && mi <= 59 && se <= 60;
}

function time(f: Fields, name: string, now: number, required: boolean): number | undefined {
  const v = f.get(name);
  if (v === undefined || v === '') return required ? reject(name, 'required') : undefined;
  let ms: number;
  if (v instanceof Date) ms = v.getTime();
  else if (typeof v === 'string') {
    if (!RFC3339.test(v)) return reject(name, 'must be an RFC 3339 timestamp like 2026-11-27T10:00:00Z');
    ms = Date.parse(v);
    if (!calendarValid(v)) return reject(name, 'not a valid date');
  } else return reject(name, 'must be an RFC 3339 timestamp string');
  if (!Number.isFinite(ms)) return reject(name, 'not a valid date');
  if (ms > now + LIMITS.futureSkewMs) return reject(name, 'more than 24h in the future');
  if (ms < LIMITS.earliest) return reject(name, 'before 2000-01-01');
  return ms;
}

function stringMap(f: Fields, name: string, maxEntries: number): Record<string, string> {
  const v = f.get(name);
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return reject(name, 'must be an object of strings');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > maxEntries) return reject(name, `more than ${maxEntries} entries`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (k.length === 0 || k.length > LIMITS.contextKey)
      return reject(`${name}.${k.slice(0, 64)}`, `key must be 1-${LIMITS.contextKey} characters`);
    if (typeof val !== 'string') return reject(`${name}.${k}`, 'must be a string');
    if (val.length > LIMITS.contextValue)
      return reject(`${name}.${k}`, `longer than ${LIMITS.contextValue} characters`);
    out[k] = val;
  }
  return out;
}

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const CURRENCY = /^[A-Z]{3}$/;

function normalizeQuery(q: string): string {
  return q.normalize('NFC').replace(/\s+/g, ' ').replace(CONTROL_ALL, '').trim();
}

/** Normalizes a category path to "A > B > C". */
export function normalizeCategory(c: string): string {
  return c
    .split('>')
    .map((p) => p.normalize('NFC').replace(/\s+/g, ' ').trim())
    .filter((p) => p.length > 0)
    .join(' > ');
}

function checkEvent(
  f: Fields,
  ctx: { now: number; subjectType: string | undefined; subjectTenant: string | undefined; priceGiven: boolean },
): NormalizedEvent {
  const eventId = id(f, 'event_id', { required: true });
  const tenant = tenantOf(f, ctx.subjectTenant);
  let type = str(f, 'type', { max: 32 });
  if (!type) {
    if (!ctx.subjectType) return reject('type', 'required');
    type = ctx.subjectType;
  }
  if (!isEventType(type))
    return reject('type', `unknown event type '${type.slice(0, 32)}' (expected one of ${EVENT_TYPES.join(', ')})`);
  if (ctx.subjectType !== undefined && ctx.subjectType !== type)
    return reject('type', `'${type}' does not match the subject's type '${ctx.subjectType.slice(0, 32)}'`);
  const userId = id(f, 'user_id', { required: true });
  const sessionId = id(f, 'session_id');
  const itemId = id(f, 'item_id', { required: type !== 'search' });
  const rawQuery = str(f, 'query', { max: LIMITS.query, allowControl: true });
  const query = normalizeQuery(rawQuery);
  if (type === 'search' && !query) return reject('query', 'required for search');
  const quantity = num(f, 'quantity', { integer: true, min: 0, max: LIMITS.quantity }) ?? 0;
  const price = num(f, 'price', { min: 0, max: LIMITS.price });
  if (type === 'purchase' && price === undefined && !ctx.priceGiven) return reject('price', 'required for purchase');
  const currency = str(f, 'currency', { max: 8, pattern: CURRENCY, patternRule: 'must be an ISO 4217 code like EUR' });
  const occurredAt = time(f, 'occurred_at', ctx.now, true) as number;
  const requestId = id(f, 'request_id');
  const position = num(f, 'position', { integer: true, min: 0, max: LIMITS.position }) ?? 0;
  const context = stringMap(f, 'context', LIMITS.contextEntries);
  const hasQuantity = type === 'add_to_cart' || type === 'remove_from_cart' || type === 'purchase';
  return {
    tenant,
    eventId,
    type,
    userId,
    sessionId,
    itemId,
    query,
    quantity: hasQuantity ? quantity || 1 : quantity,
    price: price ?? 0,
    currency,
    occurredAt,
    ingestedAt: ctx.now,
    requestId,
    position,
    context,
  };
}

/**
 * The input's tenant. A subject that names one binds it (a producer's NATS user may publish only its own
 * tenant's subjects): the payload may leave the tenant out or repeat it, never name another. Without one,
 * the payload's, or the default tenant.
 */
function tenantOf(f: Fields, subjectTenant: string | undefined): string {
  const given = str(f, 'tenant', {
    max: LIMITS.tenant,
    pattern: TENANT,
    patternRule: 'must be letters, digits, _ . -',
  });
  if (subjectTenant === undefined) return given || DEFAULT_TENANT;
  if (subjectTenant.length > LIMITS.tenant || !TENANT.test(subjectTenant))
    return reject('subject', `tenant '${subjectTenant.slice(0, LIMITS.tenant)}' must be letters, digits, _ . -`);
  if (given && given !== subjectTenant)
    return reject('tenant', `'${given}' does not match the subject's tenant '${subjectTenant}'`);
  return subjectTenant;
}

function checkItem(f: Fields, now: number, subjectTenant?: string): NormalizedItem {
  const itemId = id(f, 'item_id', { required: true });
  const tenant = tenantOf(f, subjectTenant);
  const title = str(f, 'title', { required: true, max: LIMITS.title }).trim();
  if (!title) return reject('title', 'required');
  const description = str(f, 'description', { max: LIMITS.description, allowControl: true });
  const category = normalizeCategory(str(f, 'category', { max: LIMITS.category }));
  const brand = str(f, 'brand', { max: LIMITS.brand });
  const price = num(f, 'price', { min: 0, max: LIMITS.price }) ?? 0;
  const inStockRaw = f.get('in_stock');
  if (inStockRaw !== undefined && typeof inStockRaw !== 'boolean') return reject('in_stock', 'must be true or false');
  const attributes = stringMap(f, 'attributes', 64);
  const updatedAt = time(f, 'updated_at', now, false) ?? now;
  return {
    tenant,
    itemId,
    title,
    description,
    category,
    brand,
    price,
    inStock: inStockRaw ?? true,
    attributes,
    updatedAt,
    ingestedAt: now,
  };
}

function attempt<T>(fn: () => T): Validated<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof Rejection) return { ok: false, reason: err.reason };
    throw err;
  }
}

export type PayloadFormat = 'json' | 'protobuf';

/** Decides the payload format from the Content-Type header; JSON unless it says protobuf. */
export function formatOf(contentType: string | undefined): PayloadFormat | { unsupported: string } {
  if (!contentType) return 'json';
  const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (ct === 'application/x-protobuf' || ct === 'application/protobuf' || ct === 'application/vnd.google.protobuf')
    return 'protobuf';
  if (ct === 'application/json' || ct === 'text/json' || ct === '') return 'json';
  return { unsupported: contentType.slice(0, 64) };
}

/** The fields of a decoded protobuf message (ts-proto camelCase, defaults for absent fields). */
export type ProtoFields = Record<string, unknown>;

function protoToFields(m: ProtoFields, known: Map<string, string>): Fields {
  const f: Fields = new Map();
  for (const [k, v] of Object.entries(m)) {
    const canonical = known.get(k);
    if (!canonical) continue; // ingested_at and other output-only fields
    if (v === undefined || v === '' || v === 0) continue; // proto3 defaults mean "absent"
    if (typeof v === 'object' && v !== null && !(v instanceof Date) && Object.keys(v).length === 0) continue;
    f.set(canonical, v);
  }
  return f;
}

export function validateEventJson(
  data: Uint8Array,
  now: number,
  subjectType?: string,
  subjectTenant?: string,
): Validated<NormalizedEvent> {
  return attempt(() => {
    if (data.byteLength > LIMITS.payloadBytes) reject('payload', `larger than ${LIMITS.payloadBytes} bytes`);
    return checkEvent(jsonFields(data, EVENT_FIELDS), { now, subjectType, subjectTenant, priceGiven: false });
  });
}

/**
 * Validates a decoded protobuf event. Binary proto3 cannot tell an absent price from 0, so a purchase's
 * price is not required there.
 */
export function validateEventProto(
  message: ProtoFields,
  now: number,
  subjectType?: string,
  subjectTenant?: string,
): Validated<NormalizedEvent> {
  return attempt(() =>
    checkEvent(protoToFields(message, EVENT_FIELDS), { now, subjectType, subjectTenant, priceGiven: true }),
  );
}

export function validateItemJson(data: Uint8Array, now: number, subjectTenant?: string): Validated<NormalizedItem> {
  return attempt(() => {
    if (data.byteLength > LIMITS.payloadBytes * 4) reject('payload', `larger than ${LIMITS.payloadBytes * 4} bytes`);
    return checkItem(jsonFields(data, ITEM_FIELDS), now, subjectTenant);
  });
}

export function validateItemProto(
  message: ProtoFields,
  now: number,
  subjectTenant?: string,
): Validated<NormalizedItem> {
  return attempt(() => {
    const f = protoToFields(message, ITEM_FIELDS);
    // `optional bool in_stock`: false is a real value here, unlike other proto3 defaults.
    if (message['inStock'] === false) f.set('in_stock', false);
    return checkItem(f, now, subjectTenant);
  });
}

export function rejectionOf(field: string, rule: string): Validated<never> {
  return { ok: false, reason: `${field}: ${rule}` };
}

/** The longest user id the index keeps for rejected input (valid ids are at most `LIMITS.id` bytes). */
const NAMED_ID_MAX = 1024;

const NAMED_USER_JSON = /"user_?id"\s*:\s*"((?:[^"\\]|\\.){1,1024})"/i;

/**
 * The user a payload names, read as leniently as possible: rejected input is kept (in the dead-letter
 * stream) and forgetting its user must find it. A JSON object's `user_id`/`userId` (a string or number);
 * in text that is not JSON, a `"user_id": "..."` pair; a protobuf Event's user id. The tenant is the
 * subject's, else the payload's, else the default. Undefined when no user id can be read.
 */
export function userNamedBy(
  data: Uint8Array,
  contentType: string | undefined,
  subjectTenant: string | undefined,
  decodeEvent: (d: Uint8Array) => ProtoFields,
): { tenant: string; userId: string } | undefined {
  let userId: unknown;
  let tenant: unknown;
  const format = formatOf(contentType);
  if (format === 'protobuf') {
    try {
      const m = decodeEvent(data);
      userId = m['userId'];
      tenant = m['tenant'];
    } catch {
      // Not a decodable Event: nothing to read.
    }
  } else {
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const o = parsed as Record<string, unknown>;
        userId = o['user_id'] ?? o['userId'];
        tenant = o['tenant'];
      }
    } catch {
      const found = NAMED_USER_JSON.exec(text)?.[1];
      if (found !== undefined) {
        try {
          userId = JSON.parse(`"${found}"`);
        } catch {
          userId = found;
        }
      }
    }
  }
  if (typeof userId === 'number' && Number.isFinite(userId)) userId = String(userId);
  if (typeof userId !== 'string' || userId === '' || userId.length > NAMED_ID_MAX) return undefined;
  const named = typeof tenant === 'string' && tenant !== '' && tenant.length <= LIMITS.tenant ? tenant : undefined;
  return { tenant: subjectTenant ?? named ?? DEFAULT_TENANT, userId };
}
