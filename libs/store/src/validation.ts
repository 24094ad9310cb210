import { StoreError, type CatalogItem, type ChurnScoreRecord, type StoredEvent } from './ports';

/** The largest epoch-millisecond value a JavaScript Date (and a BSON date read back as one) can hold. */
const MAX_DATE_MS = 8.64e15;

type Check<T> = { times: ReadonlyArray<keyof T & string>; numbers: ReadonlyArray<keyof T & string> };

const EVENT: Check<StoredEvent> = { times: ['occurredAt', 'ingestedAt'], numbers: ['quantity', 'price', 'position'] };
const ITEM: Check<CatalogItem> = { times: ['updatedAt', 'ingestedAt'], numbers: ['price'] };
const CHURN_SCORE: Check<ChurnScoreRecord> = { times: ['scoredAt'], numbers: ['risk'] };

/**
 * Both adapters refuse the same records, before writing any of a batch: SQLite used to reject NaN through
 * a NOT NULL constraint and keep Infinity, MongoDB stored both as the date 1970-01-01.
 */
function check<T extends object>(where: string, what: (r: T) => string, spec: Check<T>, records: readonly T[]): void {
  for (const r of records) {
    for (const field of spec.times) {
      const v = r[field] as unknown;
      if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > MAX_DATE_MS) {
        throw new StoreError(`${where}: ${what(r)}: ${field} is not a valid time in epoch milliseconds (${String(v)})`);
      }
    }
    for (const field of spec.numbers) {
      const v = r[field] as unknown;
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new StoreError(`${where}: ${what(r)}: ${field} is not a finite number (${String(v)})`);
      }
    }
  }
}

export const checkEvents = (events: readonly StoredEvent[]): void =>
  check('events.insertMany', (e) => `event '${e.eventId}' of tenant '${e.tenant}'`, EVENT, events);

export const checkItems = (items: readonly CatalogItem[]): void =>
  check('items.upsertMany', (i) => `item '${i.itemId}' of tenant '${i.tenant}'`, ITEM, items);

export const checkChurnScores = (records: readonly ChurnScoreRecord[]): void =>
  check('churnScores.upsertMany', (r) => `user '${r.userId}' of tenant '${r.tenant}'`, CHURN_SCORE, records);

/** Splits long id lists so that no single query carries an unbounded IN / $in list. */
export function chunks<T>(xs: readonly T[], n = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
