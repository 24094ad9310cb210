import { qualityGate } from './quality-gate';

const opts = { minHeldOutCases: 30, tolerance: 0.005, beatBaseline: true };
const covis = (value: number) => ({ name: 'co-visitation', value });

test.each([
  [{ metric: 'roc_auc', candidate: NaN, cases: 0, active: undefined }, false, /0 case\(s\), fewer than the 30/],
  [{ metric: 'ndcg@10', candidate: 0, cases: 0, active: 0 }, false, /0 case\(s\)/],
  [{ metric: 'roc_auc', candidate: NaN, cases: 200, active: undefined }, false, /roc_auc is NaN, not a finite number/],
  [{ metric: 'mrr', candidate: Infinity, cases: 200, active: 0.2 }, false, /Infinity, not a finite number/],
  [{ metric: 'ndcg@10', candidate: 0.1, cases: 50, active: 0.2 }, false, /0.1 is more than 0.005 below .* 0.2/],
  [{ metric: 'ndcg@10', candidate: 0.198, cases: 50, active: 0.2 }, true, /0.198 vs the active version's 0.2/],
  [{ metric: 'ndcg@10', candidate: 0.1, cases: 50, active: undefined }, true, /no comparable active version/],
  [{ metric: 'roc_auc', candidate: 0.7, cases: 50, active: NaN }, true, /no comparable active version/],
  [
    { metric: 'ndcg@10', candidate: 0.21, cases: 50, active: 0.2, baseline: covis(0.25) },
    false,
    /0.21 does not beat co-visitation's 0.25 on the same slice/,
  ],
  [{ metric: 'ndcg@10', candidate: 0.25, cases: 50, active: undefined, baseline: covis(0.25) }, false, /does not beat/],
  [
    { metric: 'ndcg@10', candidate: 0.1, cases: 50, active: 0.2, baseline: covis(0.05) },
    false,
    /more than 0.005 below the active/,
  ],
  [
    { metric: 'p@20+mrr@20', candidate: 0.6, cases: 50, active: 0.59, baseline: covis(0.5) },
    true,
    /vs the active version's 0.59; co-visitation 0.5/,
  ],
  [{ metric: 'ndcg@10', candidate: 0.2, cases: 50, active: undefined, baseline: covis(NaN) }, true, /no comparable/],
])('%j -> publish %s (%s)', (score, publish, reason) => {
  const d = qualityGate(score, opts);
  expect(d.publish).toBe(publish);
  expect(d.reason).toMatch(reason);
});

test('without beatBaseline the baseline is reported, not required', () => {
  const d = qualityGate(
    { metric: 'ndcg@10', candidate: 0.1, cases: 50, active: undefined, baseline: covis(0.3) },
    { ...opts, beatBaseline: false },
  );
  expect(d).toEqual({ publish: true, reason: 'no comparable active version; co-visitation 0.3' });
});
