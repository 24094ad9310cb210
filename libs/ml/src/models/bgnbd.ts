/**
 * BG/NBD (Fader, Hardie & Lee 2005): purchases follow Poisson(lambda) while alive, lambda ~ Gamma(r, alpha);
 * after each purchase the customer dies with probability p ~ Beta(a, b). Fitted by maximum likelihood
 * (Nelder-Mead on log-parameters). Time in weeks, as in the paper.
 */
export interface BgNbdParams {
  r: number;
  alpha: number;
  a: number;
  b: number;
}

/** Calibration summary of one customer: x repeat purchases, last at t_x, observed for T (weeks). */
export interface RfmSummary {
  x: number;
  tx: number;
  T: number;
}

/** ln Gamma via Lanczos (g = 7, n = 9). */
export function lnGamma(z: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - lnGamma(1 - z);
  z -= 1;
  let x = c[0] as number;
  for (let i = 1; i < 9; i++) x += (c[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** Total log-likelihood; customers with equal (x, tx, T) can be weighted by `counts`. */
export function bgnbdLogLikelihood(p: BgNbdParams, data: readonly RfmSummary[]): number {
  const { r, alpha, a, b } = p;
  const base = lnGamma(a + b) - lnGamma(b) + r * Math.log(alpha) - lnGamma(r);
  let ll = 0;
  for (const { x, tx, T } of data) {
    const a1 = lnGamma(r + x) + base;
    const a2 = lnGamma(b + x) - lnGamma(a + b + x);
    const a3 = -(r + x) * Math.log(alpha + T);
    const a4 = x > 0 ? Math.log(a) - Math.log(b + x - 1) - (r + x) * Math.log(alpha + tx) : -Infinity;
    ll += a1 + a2 + logAddExp(a3, a4);
  }
  return ll;
}

/** Nelder-Mead minimization. */
export function nelderMead(
  f: (x: number[]) => number,
  start: number[],
  opts: { iterations?: number; tolerance?: number; step?: number } = {},
): number[] {
  const n = start.length;
  let simplex = [start, ...start.map((_, i) => start.map((v, j) => (i === j ? v + (opts.step ?? 0.5) : v)))];
  let values = simplex.map(f);
  for (let it = 0; it < (opts.iterations ?? 4000); it++) {
    const order = values.map((v, i) => i).sort((i, j) => (values[i] as number) - (values[j] as number));
    simplex = order.map((i) => simplex[i] as number[]);
    values = order.map((i) => values[i] as number);
    // Relative tolerance: log-likelihoods of whole data sets are large, and absolute differences below
    // their float resolution never shrink.
    if (
      Math.abs((values[n] as number) - (values[0] as number)) <=
      (opts.tolerance ?? 1e-10) * (Math.abs(values[0] as number) + 1e-12)
    )
      break;
    const centroid = Array.from(
      { length: n },
      (_, j) => simplex.slice(0, n).reduce((s, p) => s + (p[j] as number), 0) / n,
    );
    const worst = simplex[n] as number[];
    const at = (t: number) => centroid.map((c, j) => c + t * (c - (worst[j] as number)));
    const reflected = at(1);
    const fr = f(reflected);
    if (fr < (values[0] as number)) {
      const expanded = at(2);
      const fe = f(expanded);
      [simplex[n], values[n]] = fe < fr ? [expanded, fe] : [reflected, fr];
    } else if (fr < (values[n - 1] as number)) {
      [simplex[n], values[n]] = [reflected, fr];
    } else {
      const contracted = at(fr < (values[n] as number) ? 0.5 : -0.5);
      const fc = f(contracted);
      if (fc < Math.min(fr, values[n] as number)) [simplex[n], values[n]] = [contracted, fc];
      else {
        const best = simplex[0] as number[];
        simplex = simplex.map((p, i) =>
          i === 0 ? p : p.map((v, j) => (best[j] as number) + 0.5 * (v - (best[j] as number))),
        );
        values = simplex.map(f);
      }
    }
  }
  const bestIndex = values.indexOf(Math.min(...values));
  return simplex[bestIndex] as number[];
}

export function fitBgNbd(data: readonly RfmSummary[]): BgNbdParams {
  // Group identical summaries: CDNOW has many one-time buyers with the same (0, 0, T).
  const groups = new Map<string, { s: RfmSummary; n: number }>();
  for (const s of data) {
    const k = `${s.x}|${s.tx}|${s.T}`;
    const g = groups.get(k);
    if (g) g.n++;
    else groups.set(k, { s, n: 1 });
  }
  const list = [...groups.values()];
  const negLl = (logp: number[]) => {
    const p = {
      r: Math.exp(logp[0] as number),
      alpha: Math.exp(logp[1] as number),
      a: Math.exp(logp[2] as number),
      b: Math.exp(logp[3] as number),
    };
    let ll = 0;
    for (const g of list) ll += g.n * bgnbdLogLikelihood(p, [g.s]);
    return Number.isFinite(ll) ? -ll : 1e300;
  };
  const best = nelderMead(negLl, [0, Math.log(5), 0, 0], { iterations: 3000, tolerance: 1e-12 });
  return {
    r: Math.exp(best[0] as number),
    alpha: Math.exp(best[1] as number),
    a: Math.exp(best[2] as number),
    b: Math.exp(best[3] as number),
  };
}

/** Gauss hypergeometric 2F1(a, b; c; z) by its series, |z| < 1. */
export function hyp2f1(a: number, b: number, c: number, z: number): number {
  let term = 1;
  let sum = 1;
  for (let k = 0; k < 10_000; k++) {
    term *= (((a + k) * (b + k)) / ((c + k) * (k + 1))) * z;
    sum += term;
    if (Math.abs(term) < 1e-14 * Math.abs(sum)) break;
  }
  return sum;
}

export function probabilityAlive(p: BgNbdParams, s: RfmSummary): number {
  if (s.x === 0) return 1;
  return 1 / (1 + (p.a / (p.b + s.x - 1)) * ((p.alpha + s.T) / (p.alpha + s.tx)) ** (p.r + s.x));
}

/** Expected purchases in (T, T + t] given the customer's history. */
export function expectedPurchases(p: BgNbdParams, s: RfmSummary, t: number): number {
  const { r, alpha, a, b } = p;
  const { x, tx, T } = s;
  const num =
    ((a + b + x - 1) / (a - 1)) *
    (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)));
  const den = 1 + (x > 0 ? (a / (b + x - 1)) * ((alpha + T) / (alpha + tx)) ** (r + x) : 0);
  return num / den;
}

/**
 * P(no purchase in (T, T + t]): dead, or alive without a purchase. Deaths only follow purchases, so an
 * alive customer makes none with probability E[exp(-lambda t)] under lambda's posterior Gamma(r + x, alpha + T).
 */
export function probabilityNoPurchase(p: BgNbdParams, s: RfmSummary, t: number): number {
  const alive = probabilityAlive(p, s);
  return 1 - alive + alive * ((p.alpha + s.T) / (p.alpha + s.T + t)) ** (p.r + s.x);
}
