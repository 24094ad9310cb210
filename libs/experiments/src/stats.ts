/**
 * The statistics experiments need, written out so that every figure can be traced: normal and
 * chi-square tails, the exact binomial (sign) test, Wilson intervals, and ratio metrics with standard
 * errors clustered by unit (the delta method). Pure functions, no dependencies.
 */

/** Complementary error function (Numerical Recipes' Chebyshev fit; fractional error below 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const coefficients = [
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223,
    0.17087277,
  ];
  let poly = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) poly = (coefficients[i] as number) + t * poly;
  const r = t * Math.exp(-z * z + poly);
  return x >= 0 ? r : 2 - r;
}

/** P(Z <= z) for a standard normal Z. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Two-sided p-value of a z statistic. */
export function twoSidedP(z: number): number {
  if (!Number.isFinite(z)) return Number.isNaN(z) ? Number.NaN : 0;
  return Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
}

/** The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return Number.NEGATIVE_INFINITY;
    if (p === 1) return Number.POSITIVE_INFINITY;
    return Number.NaN;
  }
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms). */
export function logGamma(x: number): number {
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let s = g[0] as number;
  for (let i = 1; i < 9; i++) s += (g[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

const EPS = 1e-15;
const TINY = 1e-300;
const MAX_ITER = 10_000;

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) {
    // Series for P, then Q = 1 - P.
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < MAX_ITER; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * EPS) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - logGamma(a)));
  }
  // Continued fraction (modified Lentz).
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - logGamma(a)) * h);
}

/** P(X >= x) for X chi-square distributed with `df` degrees of freedom. */
export function chiSquareSf(x: number, df: number): number {
  if (df <= 0) return Number.NaN;
  return gammaQ(df / 2, x / 2);
}

function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < MAX_ITER; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function betaRegularized(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(X <= k) for X ~ Binomial(n, p). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return betaRegularized(1 - p, n - k, k + 1);
}

/**
 * The exact two-sided sign test: is `successes` out of `n` compatible with a fair coin? (For p = 1/2 the
 * "as likely or less likely" rule of R's binom.test is twice the smaller tail.)
 */
export function signTest(successes: number, n: number): number {
  if (n <= 0) return 1;
  const k = Math.min(successes, n - successes);
  if (2 * k === n) return 1;
  return Math.min(1, 2 * binomialCdf(k, n, 0.5));
}

export interface Interval {
  value: number;
  lower: number;
  upper: number;
}

/** z for a two-sided interval at `level` (1.96 at 0.95). */
export function zFor(level: number): number {
  return normalQuantile(1 - (1 - level) / 2);
}

/** Wilson score interval of a proportion (behaves at 0 and 1 and with few trials). */
export function wilson(successes: number, trials: number, level = 0.95): Interval {
  if (trials <= 0) return { value: Number.NaN, lower: Number.NaN, upper: Number.NaN };
  const z = zFor(level);
  const p = successes / trials;
  const z2 = z * z;
  const denom = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denom;
  return { value: p, lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * Per-unit sums of a ratio metric: numerator y (clicks, revenue, ...) and denominator n (impressions) of
 * each unit. The metric is sum(y) / sum(n): units, not impressions, are the independent draws.
 */
export class RatioSums {
  units = 0;
  sumY = 0;
  sumN = 0;
  sumYY = 0;
  sumNN = 0;
  sumYN = 0;

  add(y: number, n: number): void {
    this.units++;
    this.sumY += y;
    this.sumN += n;
    this.sumYY += y * y;
    this.sumNN += n * n;
    this.sumYN += y * n;
  }

  get ratio(): number {
    return this.sumN > 0 ? this.sumY / this.sumN : Number.NaN;
  }

  /**
   * Variance of the ratio by the delta method over units:
   * Var(R) ~ (s_yy - 2 R s_yn + R^2 s_nn) / (m * nbar^2), with sample (co)variances over the m units.
   */
  get variance(): number {
    const m = this.units;
    if (m < 2 || this.sumN <= 0) return Number.NaN;
    const r = this.sumY / this.sumN;
    const yBar = this.sumY / m;
    const nBar = this.sumN / m;
    const syy = (this.sumYY - m * yBar * yBar) / (m - 1);
    const snn = (this.sumNN - m * nBar * nBar) / (m - 1);
    const syn = (this.sumYN - m * yBar * nBar) / (m - 1);
    return Math.max(0, syy - 2 * r * syn + r * r * snn) / (m * nBar * nBar);
  }
}

/** A ratio metric with its interval, scaled (1000 for "per mille"), clamped at `floor` when given. */
export function ratioInterval(s: RatioSums, opts: { scale?: number; level?: number; floor?: number } = {}): Interval {
  const scale = opts.scale ?? 1;
  const value = s.ratio * scale;
  const se = Math.sqrt(s.variance) * scale;
  const z = zFor(opts.level ?? 0.95);
  const lower = value - z * se;
  return {
    value,
    lower: opts.floor !== undefined ? Math.max(opts.floor, lower) : lower,
    upper: value + z * se,
  };
}

export interface RatioComparison {
  difference: Interval;
  relativeLift: Interval;
  pValue: number;
}

/** Treatment against control for independent groups of units: difference and relative lift with intervals. */
export function compareRatios(
  treatment: RatioSums,
  control: RatioSums,
  opts: { scale?: number; level?: number } = {},
): RatioComparison {
  const scale = opts.scale ?? 1;
  const z = zFor(opts.level ?? 0.95);
  const rt = treatment.ratio;
  const rc = control.ratio;
  const vt = treatment.variance;
  const vc = control.variance;
  const diff = (rt - rc) * scale;
  const seDiff = Math.sqrt(vt + vc) * scale;
  const lift = rt / rc - 1;
  const seLift = Math.abs(rt / rc) * Math.sqrt(vt / (rt * rt) + vc / (rc * rc));
  const pValue = seDiff > 0 ? twoSidedP(diff / seDiff) : diff === 0 ? 1 : Number.NaN;
  return {
    difference: { value: diff, lower: diff - z * seDiff, upper: diff + z * seDiff },
    relativeLift: { value: lift, lower: lift - z * seLift, upper: lift + z * seLift },
    pValue,
  };
}

export interface GoodnessOfFit {
  chiSquare: number;
  degreesOfFreedom: number;
  pValue: number;
}

/** Pearson's chi-square goodness of fit of observed counts against expected shares (normalized here). */
export function chiSquareGoodnessOfFit(observed: readonly number[], shares: readonly number[]): GoodnessOfFit {
  const total = observed.reduce((a, b) => a + b, 0);
  const shareSum = shares.reduce((a, b) => a + b, 0);
  let chi = 0;
  let cells = 0;
  observed.forEach((o, i) => {
    const e = (total * (shares[i] ?? 0)) / shareSum;
    if (e <= 0) return;
    chi += ((o - e) * (o - e)) / e;
    cells++;
  });
  const df = Math.max(0, cells - 1);
  return { chiSquare: chi, degreesOfFreedom: df, pValue: total > 0 && df > 0 ? chiSquareSf(chi, df) : 1 };
}

/** The q-quantile (0..1) of values by linear interpolation; NaN when empty. Sorts a copy. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
}
