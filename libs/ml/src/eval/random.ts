/** Seeded PRNG (mulberry32), so that sampled evaluations and training runs are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffleInPlace<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

/** Each of `n` rows' fold (0..folds-1), by a seeded shuffle dealt round-robin: folds differ by at most one row. */
export function randomFolds(n: number, folds: number, seed: number): Int32Array {
  const fold = new Int32Array(n);
  shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    mulberry32(seed),
  ).forEach((i, k) => (fold[i] = k % folds));
  return fold;
}
