import { expectedPurchases, fitBgNbd, hyp2f1, lnGamma, probabilityAlive, type RfmSummary } from './bgnbd';

test('lnGamma and 2F1 match known values', () => {
  expect(lnGamma(1)).toBeCloseTo(0, 10);
  expect(lnGamma(5)).toBeCloseTo(Math.log(24), 10);
  expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 10);
  // 2F1(1, 1; 2; z) = -ln(1 - z) / z
  expect(hyp2f1(1, 1, 2, 0.5)).toBeCloseTo(-Math.log(0.5) / 0.5, 10);
});

test('BG/NBD recovers the parameters of data simulated from it', () => {
  // Simulate 4,000 customers over 39 weeks from known parameters.
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const gamma = (k: number, theta: number): number => {
    // Marsaglia-Tsang for k >= 1; boost for k < 1.
    if (k < 1) return gamma(k + 1, theta) * rand() ** (1 / k);
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const u1 = Math.max(rand(), 1e-12);
      const n = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rand());
      const v = (1 + c * n) ** 3;
      if (v > 0 && Math.log(Math.max(rand(), 1e-12)) < 0.5 * n * n + d - d * v + d * Math.log(v)) return d * v * theta;
    }
  };
  const truth = { r: 0.8, alpha: 6, a: 1.2, b: 3 };
  const data: RfmSummary[] = [];
  for (let i = 0; i < 4000; i++) {
    const lambda = gamma(truth.r, 1 / truth.alpha);
    const ga = gamma(truth.a, 1);
    const p = ga / (ga + gamma(truth.b, 1));
    const T = 39;
    let t = 0;
    let x = 0;
    let tx = 0;
    for (;;) {
      t += -Math.log(Math.max(rand(), 1e-12)) / lambda;
      if (t > T) break;
      x++;
      tx = t;
      if (rand() < p) break;
    }
    data.push({ x, tx, T });
  }
  const fit = fitBgNbd(data);
  expect(fit.r).toBeGreaterThan(0.55);
  expect(fit.r).toBeLessThan(1.1);
  expect(fit.alpha).toBeGreaterThan(3.5);
  expect(fit.alpha).toBeLessThan(9);
  const s = { x: 3, tx: 30, T: 39 };
  expect(probabilityAlive(fit, { x: 0, tx: 0, T: 39 })).toBe(1);
  expect(probabilityAlive(fit, s)).toBeGreaterThan(probabilityAlive(fit, { x: 3, tx: 5, T: 39 }));
  expect(expectedPurchases(fit, s, 39)).toBeGreaterThan(expectedPurchases(fit, { x: 3, tx: 5, T: 39 }, 39));
});
