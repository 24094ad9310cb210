import { mulberry32, ServingSessionModel, sessionArtifactFromSidecar } from '@aisle/ml';
import { baselineOnHeldOut, heldOutSlice, scoreOnHeldOut, trainSessionModel, type ShopEvent } from './pipeline';

const t0 = Date.UTC(2026, 9, 1);
const opts = { heldOutShare: 0.1, churnHorizonDays: 7 };

/** A planted shop: 20 chains of 6 items; each session (an hour apart) walks one chain from its start. */
function sessionEvents(sessions: number, seed: number): ShopEvent[] {
  const rand = mulberry32(seed);
  const out: ShopEvent[] = [];
  for (let s = 0; s < sessions; s++) {
    const chain = Math.floor(rand() * 20);
    const len = 3 + Math.floor(rand() * 3);
    const items = Array.from({ length: len }, (_, k) => `c${chain}-${k}`);
    items.forEach((itemId, k) =>
      out.push({
        type: 'view',
        userId: `u${s % 97}`,
        sessionId: `s${s}`,
        itemId,
        query: '',
        quantity: 0,
        price: 0,
        occurredAt: t0 + s * 3_600_000 + k * 60_000,
      }),
    );
  }
  return out;
}

test('the trainer chooses a session model on validation sessions and scores it, and co-visitation, on the held-out slice', async () => {
  const events = sessionEvents(1500, 3);
  const heldOut = heldOutSlice(events, [], opts);
  expect(heldOut.sessions.length).toBeGreaterThan(200);
  const logs: string[] = [];
  const c = trainSessionModel(events, heldOut, {
    ...opts,
    sasrec: {},
    text: {},
    rankerEpochs: 1,
    seed: 1,
    sessionBudgetMs: 60_000,
    log: (m) => logs.push(m),
  });
  if ('reason' in c) throw new Error(c.reason);
  expect(c.onnx.byteLength).toBe(0);
  expect(logs.some((l) => l.startsWith('session model validation defaults'))).toBe(true);
  // The artifact rebuilds a serving model that continues a chain.
  const served = new ServingSessionModel(sessionArtifactFromSidecar(c.sidecar));
  // (A session item may come first: a re-view is a valid next click.)
  const next = served.recommend(['c4-0', 'c4-1'], 5).filter((r) => !['c4-0', 'c4-1'].includes(r.itemId));
  expect(next[0]?.itemId).toBe('c4-2');
  const trainEvents = events.filter((e) => e.occurredAt < heldOut.sliceStart);
  const score = await scoreOnHeldOut('session', c, heldOut, { sasrec: undefined, trainEvents });
  expect(score.metric).toBe('p@20+mrr@20');
  expect(score.cases).toBe(heldOut.sessions.length);
  // Planted chains: the next item is nearly always in the top 20 and often first.
  expect(score.value).toBeGreaterThan(1.3);
  const baseline = baselineOnHeldOut('session', heldOut, trainEvents);
  expect(baseline?.name).toBe('session co-visitation');
  expect(baseline?.value).toBeGreaterThan(1);
  expect(baselineOnHeldOut('churn', heldOut, trainEvents)).toBeUndefined();
});

test('too few sessions: no session model, and the reason says why', () => {
  const events = sessionEvents(12, 4);
  const c = trainSessionModel(events, heldOutSlice(events, [], opts), {
    ...opts,
    sasrec: {},
    text: {},
    rankerEpochs: 1,
    seed: 1,
    log: () => undefined,
  });
  expect('reason' in c && c.reason).toMatch(/sessions of two items or more before the held-out slice \(needs 20\)/);
});
