/** Closed-loop load: `concurrency` callers issuing requests back to back for `seconds` (or `count` calls). */
export interface LoadResult {
  calls: number;
  errors: number;
  seconds: number;
  qps: number;
  p50: number;
  p90: number;
  p99: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export async function load(
  call: () => Promise<unknown>,
  opts: { concurrency: number; seconds?: number; count?: number; warmup?: number },
): Promise<LoadResult> {
  for (let i = 0; i < (opts.warmup ?? 50); i++) await call();
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const start = performance.now();
  const until = start + (opts.seconds ?? 1e9) * 1000;
  const more = () => (opts.count !== undefined ? issued < opts.count : performance.now() < until);
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (more()) {
        issued++;
        const t = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    errors,
    seconds,
    qps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
  };
}
