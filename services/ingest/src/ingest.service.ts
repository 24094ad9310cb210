import type { NormalizedEvent, NormalizedItem, PayloadFormat, ProtoFields, Validated } from './validation';
import {
  formatOf,
  rejectionOf,
  validateEventJson,
  validateEventProto,
  validateItemJson,
  validateItemProto,
} from './validation';

/** Where validated input is stored; idempotent by (tenant, id). */
export interface IngestRepository {
  /** `conflicting`: indices of events whose id is already stored (or earlier in `events`) with other content. */
  insertEvents(events: readonly NormalizedEvent[]): Promise<{ inserted: number; conflicting: number[] }>;
  upsertItems(items: readonly NormalizedItem[]): Promise<{ written: number }>;
}

/** Decodes binary protobuf payloads (the transport adapter provides the generated codec). */
export interface ProtoDecoder {
  decodeEvent(data: Uint8Array): ProtoFields;
  decodeItem(data: Uint8Array): ProtoFields;
}

export interface RawInput {
  readonly data: Uint8Array;
  readonly contentType: string | undefined;
  /** The event type named by the subject (`aisle.clickstream.v1.<type>`), if any. */
  readonly subjectType?: string | undefined;
}

export interface IngestStats {
  accepted: number;
  rejected: number;
  stored: number;
}

/**
 * Validates, normalizes and stores producer input. Transport-free: adapters feed it raw payloads (NATS)
 * or decoded messages (gRPC) and publish what it accepts.
 */
const CONFLICT = rejectionOf('event_id', 'already stored with different content');

export class IngestService {
  constructor(
    private readonly repo: IngestRepository,
    private readonly decoder: ProtoDecoder,
    private readonly clock: () => number = Date.now,
  ) {}

  private decode<T>(
    input: RawInput,
    json: (d: Uint8Array, now: number) => Validated<T>,
    proto: (m: ProtoFields, now: number) => Validated<T>,
    decodeProto: (d: Uint8Array) => ProtoFields,
    now: number,
  ): Validated<T> {
    const format: PayloadFormat | { unsupported: string } = formatOf(input.contentType);
    if (typeof format === 'object')
      return rejectionOf(
        'Content-Type',
        `unsupported '${format.unsupported}' (use application/json or application/x-protobuf)`,
      );
    if (format === 'json') return json(input.data, now);
    let message: ProtoFields;
    try {
      message = decodeProto(input.data);
    } catch (err) {
      return rejectionOf('payload', `invalid protobuf (${err instanceof Error ? err.message : String(err)})`);
    }
    return proto(message, now);
  }

  /** Validates raw clickstream payloads in order (one result per input). */
  validateEvents(inputs: readonly RawInput[]): Array<Validated<NormalizedEvent>> {
    const now = this.clock();
    return inputs.map((i) =>
      this.decode(
        i,
        (d, n) => validateEventJson(d, n, i.subjectType),
        (m, n) => validateEventProto(m, n, i.subjectType),
        (d) => this.decoder.decodeEvent(d),
        now,
      ),
    );
  }

  validateEventMessages(messages: readonly ProtoFields[]): Array<Validated<NormalizedEvent>> {
    const now = this.clock();
    return messages.map((m) => validateEventProto(m, now));
  }

  validateItems(inputs: readonly RawInput[]): Array<Validated<NormalizedItem>> {
    const now = this.clock();
    return inputs.map((i) =>
      this.decode(i, validateItemJson, validateItemProto, (d) => this.decoder.decodeItem(d), now),
    );
  }

  validateItemMessages(messages: readonly ProtoFields[]): Array<Validated<NormalizedItem>> {
    const now = this.clock();
    return messages.map((m) => validateItemProto(m, now));
  }

  /**
   * Stores the valid events of a batch (each (tenant, event id) once, even when repeated in the batch
   * or already stored) and returns the results with conflicts turned into rejections: an event id
   * already stored with other content is a producer bug that must reach the dead-letter stream, not a
   * re-send to drop silently. Throws when the store fails: nothing of the batch may then be acknowledged.
   */
  async storeEvents(
    validated: ReadonlyArray<Validated<NormalizedEvent>>,
  ): Promise<IngestStats & { results: Array<Validated<NormalizedEvent>> }> {
    const valid: NormalizedEvent[] = [];
    const positions: number[] = [];
    validated.forEach((r, i) => {
      if (!r.ok) return;
      valid.push(r.value);
      positions.push(i);
    });
    const { inserted, conflicting } =
      valid.length > 0 ? await this.repo.insertEvents(valid) : { inserted: 0, conflicting: [] };
    const results = [...validated];
    for (const k of conflicting) results[positions[k] as number] = CONFLICT;
    const rejected = results.filter((r) => !r.ok).length;
    return { accepted: results.length - rejected, rejected, stored: inserted, results };
  }

  async storeItems(
    results: ReadonlyArray<Validated<NormalizedItem>>,
  ): Promise<IngestStats & { results: ReadonlyArray<Validated<NormalizedItem>> }> {
    const valid = results.flatMap((r) => (r.ok ? [r.value] : []));
    const { written } = valid.length > 0 ? await this.repo.upsertItems(valid) : { written: 0 };
    return { accepted: valid.length, rejected: results.length - valid.length, stored: written, results };
  }
}
