import { experimentV1, rankingV1 } from '@aisle/contracts';
import { analyzeExperiment, type JoinedRequest, type Outcome } from './analysis';
import { normalizeExperiment } from './definition';

const T0 = Date.UTC(2026, 10, 1);
const { Design } = experimentV1;

const ab = normalizeExperiment(
  experimentV1.Experiment.fromPartial({
    id: 'ab',
    surface: rankingV1.Surface.SURFACE_RECOMMEND,
    design: Design.DESIGN_AB,
    arms: [{ name: 'a' }, { name: 'b' }],
    attributionWindowSeconds: 3600,
  }),
  T0,
);
const inter = normalizeExperiment({ ...ab, id: 'il', design: Design.DESIGN_INTERLEAVING, primaryMetric: 0 }, T0);

const ok = (arm: string) => ({ arm, latencyMs: 10, degraded: false, failed: false });
const click = (eventId: string, itemId: string, at: number): Outcome => ({
  eventId,
  type: 'click',
  itemId,
  occurredAt: at,
  revenue: 0,
});

function abRequest(id: string, unit: string, arm: string, at: number, outcomes: Outcome[]): JoinedRequest {
  return {
    served: {
      requestId: id,
      unit,
      servedAt: at,
      arm,
      interleaved: false,
      items: ['i1', 'i2', 'i3', 'i4'].map((itemId) => ({ itemId, team: '' })),
      runs: [ok(arm)],
    },
    outcomes,
  };
}

describe('analyzeExperiment', () => {
  it('counts impressions and attributed outcomes per arm', () => {
    const data = [
      abRequest('r1', 'u:1', 'a', T0, [
        click('e1', 'i1', T0 + 1000),
        click('e2', 'i1', T0 + 2000), // the same item again: one click
        { eventId: 'e3', type: 'purchase', itemId: 'i1', occurredAt: T0 + 5000, revenue: 20 },
        { eventId: 'e4', type: 'purchase', itemId: 'i1', occurredAt: T0 + 6000, revenue: 20 }, // a second purchase: revenue counts
        click('e5', 'zz', T0 + 1000), // not shown
        click('e6', 'i2', T0 + 2 * 3600_000), // outside the window
      ]),
      abRequest('r2', 'u:2', 'a', T0 + 10, []),
      abRequest('r3', 'u:3', 'b', T0 + 20, [click('e7', 'i3', T0 + 30)]),
    ];
    const r = analyzeExperiment(ab, data, T0);
    const a = r.arms.find((x) => x.arm === 'a');
    expect(a).toMatchObject({ units: 2, requests: 2, impressions: 8, clicks: 1, purchases: 1, revenue: 40 });
    expect(a?.ctr?.value).toBeCloseTo(1 / 8, 12);
    expect(a?.revenuePerMille?.value).toBeCloseTo(5000, 9);
    expect(r.unattributedOutcomes).toBe(2);
    expect(r.asOf?.getTime()).toBe(T0 + 6000);
    expect(r.arms.find((x) => x.arm === 'b')).toMatchObject({ units: 1, impressions: 4, clicks: 1 });
  });

  it('credits interleaving clicks to the team of the item and scores wins, losses and ties', () => {
    const items = [
      { itemId: 'x', team: 'a' },
      { itemId: 'y', team: 'b' },
      { itemId: 'z', team: 'a' },
      { itemId: 'w', team: 'b' },
    ];
    const req = (id: string, unit: string, outcomes: Outcome[]): JoinedRequest => ({
      served: { requestId: id, unit, servedAt: T0, arm: '', interleaved: true, items, runs: [ok('a'), ok('b')] },
      outcomes,
    });
    const data = [
      req('r1', 'u:1', [click('1', 'x', T0 + 1), click('2', 'z', T0 + 2), click('3', 'y', T0 + 3)]), // a 2 - 1 b
      req('r2', 'u:1', [click('4', 'y', T0 + 1)]), // b
      req('r3', 'u:2', [click('5', 'x', T0 + 1), click('6', 'w', T0 + 2)]), // tie
      req('r4', 'u:2', []), // no information
    ];
    const r = analyzeExperiment(inter, data, T0);
    const p = r.interleaving?.clicks;
    expect(p).toMatchObject({ winsA: 1, winsB: 1, ties: 1 });
    expect(p?.preference?.value).toBeCloseTo(0, 12);
    expect(p?.pValue).toBe(1);
    expect(r.interleaving?.requests).toBe(4);
    const a = r.arms.find((x) => x.arm === 'a');
    expect(a).toMatchObject({ impressions: 8, clicks: 3 });
    // Every request's first item came from team a: the first-pick split is checked.
    expect(r.sampleRatio?.counted).toBe('first_picks');
    expect(r.sampleRatio?.counts.map((c) => c.observed)).toEqual([4, 0]);
  });

  it('builds a cumulative timeline ending at as_of', () => {
    const data = Array.from({ length: 30 }, (_, i) =>
      abRequest(`r${i}`, `u:${i}`, i % 2 ? 'b' : 'a', T0 + i * 3_600_000, [
        click(`e${i}`, 'i1', T0 + i * 3_600_000 + 5),
      ]),
    );
    const r = analyzeExperiment(ab, data, T0);
    const times = r.timeline.map((p) => p.time?.getTime() ?? 0);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(times[times.length - 1]).toBe(r.asOf?.getTime());
    const impressions = r.timeline.map((p) => p.arms.reduce((s, a) => s + a.impressions, 0));
    expect(impressions).toEqual([...impressions].sort((x, y) => x - y));
    expect(impressions[impressions.length - 1]).toBe(120);
  });
});
