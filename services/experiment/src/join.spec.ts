import { clickstreamV1, experimentV1, rankingV1 } from '@aisle/contracts';
import { normalizeExperiment } from '@aisle/experiments';
import { candidateExperiments, outcomeOf, servedInExperiment, withOutcome, withServed } from './join';

const T0 = Date.UTC(2026, 10, 1);

describe('the join', () => {
  it('keeps served responses of experiments only, with the unit and each item team', () => {
    const base = rankingV1.Served.fromPartial({
      requestId: 'r1',
      tenant: '',
      userId: '',
      sessionId: 's9',
      servedAt: new Date(T0),
      items: [
        { itemId: 'i1', position: 1, score: 1, team: 'b' },
        { itemId: 'i2', position: 2, score: 0.5 },
      ],
    });
    expect(servedInExperiment(base)).toBeUndefined();
    const s = servedInExperiment({
      ...base,
      experiment: {
        experimentId: 'x',
        arm: '',
        interleaved: true,
        runs: [{ arm: 'a', latencyMs: 3, degraded: true, failed: false, error: '' }],
      },
    });
    expect(s).toEqual({
      tenant: 'default',
      experimentId: 'x',
      record: {
        requestId: 'r1',
        unit: 's:s9',
        servedAt: T0,
        arm: '',
        interleaved: true,
        items: [
          { itemId: 'i1', team: 'b' },
          { itemId: 'i2', team: '' },
        ],
        runs: [{ arm: 'a', latencyMs: 3, degraded: true, failed: false }],
      },
    });
  });

  it('takes clicks, add-to-carts and purchases that name a request; purchases carry revenue', () => {
    const e = (patch: Partial<clickstreamV1.Event>) =>
      clickstreamV1.Event.fromPartial({
        eventId: 'e1',
        type: 'purchase',
        userId: 'u',
        itemId: 'i1',
        requestId: 'r1',
        occurredAt: new Date(T0),
        price: 12.5,
        quantity: 2,
        ...patch,
      });
    expect(outcomeOf(e({}))?.outcome).toEqual({
      eventId: 'e1',
      type: 'purchase',
      itemId: 'i1',
      occurredAt: T0,
      revenue: 25,
    });
    expect(outcomeOf(e({ type: 'click' }))?.outcome.revenue).toBe(0);
    expect(outcomeOf(e({ type: 'view' }))).toBeUndefined();
    expect(outcomeOf(e({ requestId: '' }))).toBeUndefined();
  });

  it('looks for an outcome in the experiments that ran (or just stopped) when it happened', () => {
    const x = normalizeExperiment(
      experimentV1.Experiment.fromPartial({
        id: 'x',
        surface: rankingV1.Surface.SURFACE_RECOMMEND,
        design: experimentV1.Design.DESIGN_AB,
        arms: [{ name: 'a' }, { name: 'b' }],
        startTime: new Date(T0),
        attributionWindowSeconds: 3600,
      }),
      T0,
    );
    const stopped = { ...x, stopTime: new Date(T0 + 10_000) };
    const ids = (at: number, tenant = 'default') => candidateExperiments([stopped], tenant, at).map((e) => e.id);
    expect(ids(T0 + 5000)).toEqual(['x']);
    expect(ids(T0 + 10_000 + 3_599_000)).toEqual(['x']);
    expect(ids(T0 + 10_000 + 3_601_000)).toEqual([]);
    expect(ids(T0 - 3_600_000)).toEqual([]);
    expect(ids(T0 + 5000, 'other')).toEqual([]);
  });

  it('is idempotent: an outcome joins once; a served record keeps the outcomes already joined', () => {
    const served = { requestId: 'r', unit: 'u:1', servedAt: T0, arm: 'a', interleaved: false, items: [], runs: [] };
    const o = { eventId: 'e', type: 'click' as const, itemId: 'i', occurredAt: T0, revenue: 0 };
    const doc = withOutcome(withServed(undefined, served), o)!;
    expect(withOutcome(doc, o)).toBeUndefined();
    expect(withServed(doc, served).outcomes).toEqual([o]);
  });
});
