import {
  binomialCdf,
  chiSquareGoodnessOfFit,
  chiSquareSf,
  compareRatios,
  normalCdf,
  normalQuantile,
  quantile,
  RatioSums,
  ratioInterval,
  signTest,
  twoSidedP,
  wilson,
} from './stats';

// Reference values from R (pnorm, qnorm, pchisq, pbinom, binom.test, prop.test-free Wilson formula).
describe('distributions', () => {
  it('normal cdf and quantile', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963985)).toBeCloseTo(0.975, 7);
    expect(normalCdf(-3)).toBeCloseTo(0.001349898, 8);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963985, 7);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306, 7);
    expect(normalQuantile(0.5)).toBe(0);
    expect(twoSidedP(1.959963985)).toBeCloseTo(0.05, 6);
    expect(twoSidedP(5)).toBeCloseTo(5.733031e-7, 10);
  });

  it('chi-square tail', () => {
    expect(chiSquareSf(3.841458821, 1)).toBeCloseTo(0.05, 7);
    expect(chiSquareSf(10.82756617, 1)).toBeCloseTo(0.001, 7);
    expect(chiSquareSf(5.991464547, 2)).toBeCloseTo(0.05, 7);
    expect(chiSquareSf(20, 5)).toBeCloseTo(0.00124973, 8);
    expect(chiSquareSf(0, 3)).toBe(1);
  });

  it('binomial cdf and the exact sign test', () => {
    expect(binomialCdf(3, 10, 0.5)).toBeCloseTo(0.171875, 10);
    expect(binomialCdf(40, 100, 0.3)).toBeCloseTo(0.9875016, 6);
    // binom.test(2, 10)$p.value = 0.109375; binom.test(60, 100) = 0.05688793
    expect(signTest(2, 10)).toBeCloseTo(0.109375, 10);
    expect(signTest(8, 10)).toBeCloseTo(0.109375, 10);
    expect(signTest(60, 100)).toBeCloseTo(0.05688793, 7);
    expect(signTest(5, 10)).toBe(1);
    expect(signTest(0, 0)).toBe(1);
    // 2 * sum(dbinom(0:4800, 10000, 0.5)), summed exactly in log space.
    expect(signTest(5200, 10_000)).toBeCloseTo(6.593515599e-5, 12);
  });

  it('Wilson interval', () => {
    const w = wilson(10, 100);
    expect(w.value).toBe(0.1);
    expect(w.lower).toBeCloseTo(0.05522914, 6);
    expect(w.upper).toBeCloseTo(0.1743657, 6);
    expect(wilson(0, 50).lower).toBe(0);
    expect(Number.isNaN(wilson(0, 0).value)).toBe(true);
  });

  it('chi-square goodness of fit', () => {
    // chisq.test(c(520, 480), p = c(0.5, 0.5)): X-squared = 1.6, p = 0.2059032
    const fit = chiSquareGoodnessOfFit([520, 480], [0.5, 0.5]);
    expect(fit.chiSquare).toBeCloseTo(1.6, 10);
    expect(fit.degreesOfFreedom).toBe(1);
    expect(fit.pValue).toBeCloseTo(0.2059032, 6);
    expect(chiSquareGoodnessOfFit([0, 0], [1, 1]).pValue).toBe(1);
  });

  it('quantile interpolates', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([10, 0], 0.95)).toBeCloseTo(9.5, 10);
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
  });
});

describe('ratio metrics clustered by unit', () => {
  it('matches the delta-method formula computed by hand', () => {
    const units: Array<[number, number]> = [
      [1, 10],
      [0, 5],
      [3, 12],
      [2, 8],
    ];
    const s = new RatioSums();
    for (const [y, n] of units) s.add(y, n);
    const m = units.length;
    const ys = units.map((u) => u[0]);
    const ns = units.map((u) => u[1]);
    const yBar = ys.reduce((a, b) => a + b) / m;
    const nBar = ns.reduce((a, b) => a + b) / m;
    const r = yBar / nBar;
    const cov = (a: number[], b: number[], ma: number, mb: number) =>
      a.reduce((acc, x, i) => acc + (x - ma) * ((b[i] as number) - mb), 0) / (m - 1);
    const expected =
      (cov(ys, ys, yBar, yBar) - 2 * r * cov(ys, ns, yBar, nBar) + r * r * cov(ns, ns, nBar, nBar)) / (m * nBar * nBar);
    expect(s.ratio).toBeCloseTo(6 / 35, 12);
    expect(s.variance).toBeCloseTo(expected, 12);
    const i = ratioInterval(s, { scale: 1000 });
    expect(i.upper - i.value).toBeCloseTo(1.959963985 * Math.sqrt(expected) * 1000, 6);
  });

  it('is wider when the same impressions come from fewer units', () => {
    // 1,000 impressions each way; clicks clustered in a few heavy users vs spread evenly.
    const clustered = new RatioSums();
    const spread = new RatioSums();
    for (let u = 0; u < 10; u++) clustered.add(u < 2 ? 50 : 0, 100);
    for (let u = 0; u < 100; u++) spread.add(1, 10);
    expect(clustered.ratio).toBeCloseTo(spread.ratio, 12);
    expect(clustered.variance).toBeGreaterThan(spread.variance);
  });

  it('compares arms: difference, lift and a p-value consistent with the interval', () => {
    const t = new RatioSums();
    const c = new RatioSums();
    for (let u = 0; u < 400; u++) {
      t.add(u % 5 === 0 ? 3 : 1, 10);
      c.add(u % 5 === 0 ? 2 : 1, 10);
    }
    const cmp = compareRatios(t, c);
    expect(cmp.difference.value).toBeCloseTo(0.02, 10);
    expect(cmp.relativeLift.value).toBeCloseTo(0.02 / 0.12, 10);
    expect(cmp.pValue).toBeLessThan(0.05);
    expect(cmp.difference.lower).toBeGreaterThan(0);
    const same = compareRatios(c, c);
    expect(same.pValue).toBeCloseTo(1, 10);
  });

  it('reports NaN rather than a made-up interval below two units', () => {
    const s = new RatioSums();
    s.add(1, 10);
    expect(Number.isNaN(s.variance)).toBe(true);
  });
});
