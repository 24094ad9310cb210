import { heldOutSlice, robustStart, type ShopEvent } from './pipeline';

const DAY = 86_400_000;
const t0 = Date.UTC(2026, 9, 1);

function events(days: number, users: number): ShopEvent[] {
  const out: ShopEvent[] = [];
  for (let u = 0; u < users; u++)
    for (let d = 0; d < days; d += 1 + (u % 3))
      out.push({
        type: 'view',
        userId: `u${u}`,
        sessionId: `s${u}-${d}`,
        itemId: `i${(u + d) % 17}`,
        query: '',
        quantity: 0,
        price: 0,
        occurredAt: t0 + d * DAY + u * 60_000,
      });
  return out;
}

test('one event with a wrong clock does not move the held-out window', () => {
  const base = events(30, 40);
  const outlier: ShopEvent = { ...(base[0] as ShopEvent), userId: 'time-traveller', occurredAt: Date.UTC(2000, 0, 1) };
  const opts = { heldOutShare: 0.1, churnHorizonDays: 7 };
  const clean = heldOutSlice(base, [], opts);
  const withOutlier = heldOutSlice([...base, outlier], [], opts);
  // Naively (from the earliest event) the window would start years earlier; robustly it moves by
  // at most the gap between two neighbouring events.
  expect(Math.abs(withOutlier.sliceStart - clean.sliceStart)).toBeLessThan(DAY / 2);
  expect(withOutlier.sliceStart).toBeGreaterThan(t0 + 25 * DAY);
  expect(withOutlier.churn.cutoff).toBe(clean.churn.cutoff);
  expect(robustStart([outlier, ...base].sort((a, b) => a.occurredAt - b.occurredAt))).toBeGreaterThanOrEqual(t0);
});
