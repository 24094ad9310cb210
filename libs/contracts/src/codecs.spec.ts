import { decodeServedHead } from './codecs';
import { Served } from './gen/aisle/ranking/v1/ranking_service';

const items = Array.from({ length: 50 }, (_, i) => ({ itemId: `item-${i}`, position: i + 1, score: 1 / (i + 1) }));

describe('decodeServedHead', () => {
  it('decodes the whole message when it carries an experiment', () => {
    const served = Served.fromPartial({
      requestId: 'r1',
      tenant: 't',
      userId: 'u1',
      items,
      servedAt: new Date(1_700_000_000_000),
      experiment: { experimentId: 'e1', arm: 'b', runs: [{ arm: 'b', latencyMs: 2 }] },
    });
    const got = decodeServedHead(Served.encode(served).finish());
    expect(got).toEqual(Served.decode(Served.encode(served).finish()));
    expect(got?.experiment?.experimentId).toBe('e1');
    expect(got?.items).toHaveLength(50);
  });

  it('answers undefined for a response in no experiment (items skipped, not decoded)', () => {
    const bytes = Served.encode(Served.fromPartial({ requestId: 'r2', userId: 'u2', items })).finish();
    expect(decodeServedHead(bytes)).toBeUndefined();
    expect(decodeServedHead(new Uint8Array(0))).toBeUndefined();
  });

  it('throws on bytes that are not a protobuf message, as a full decode does', () => {
    const bytes = Served.encode(Served.fromPartial({ requestId: 'r3', items })).finish();
    const truncated = bytes.subarray(0, bytes.length - 3);
    expect(() => Served.decode(truncated)).toThrow();
    expect(() => decodeServedHead(truncated)).toThrow();
    // Wire type 7 does not exist.
    expect(() => decodeServedHead(Uint8Array.from([0x0f, 0x01]))).toThrow();
  });
});
