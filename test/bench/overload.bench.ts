/**
 * `pnpm bench overload`: Recommend driven open-loop at 2x and 4x the capacity measured in the same run.
 * Admission control (bounded concurrency and queue per RPC) should keep the admitted throughput near
 * capacity and its latency near the unloaded one, shed the rest at once (RESOURCE_EXHAUSTED with a retry
 * hint) and never answer a call after its deadline. The generator sends encoded requests (no protobuf
 * work of its own) and, unless BENCH_ISOLATE=0, ranking runs on a core of its own (Linux taskset) while
 * the generator and the rest of the stack share the others: capacity is measured the same way.
 */
import { rankingV1 } from '@aisle/contracts';
import { grpc, isGrpcError } from '@aisle/runtime';
import { load, percentile } from './load';
import { counterValue, startRankingBenchStack } from './ranking-stack';
import { report, type Row } from './report';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);
const DEADLINE_MS = Number(process.env['BENCH_DEADLINE_MS'] ?? 250);

type Outcome = 'ok' | 'shed' | 'deadline' | 'error';

interface OpenLoopResult {
  offeredQps: number;
  sent: number;
  ok: number;
  shed: number;
  deadline: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Client side: OK answers that arrived after the call's deadline (grpc-js should make this impossible). */
  okAfterDeadline: number;
  retryHints: number[];
}

/** Issues calls at a fixed rate regardless of how fast they are answered (open loop). */
async function openLoop(
  call: (deadlineMs: number) => Promise<{ outcome: Outcome; retryAfterMs?: number }>,
  rate: number,
  seconds: number,
): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  const r: OpenLoopResult = {
    offeredQps: rate,
    sent: 0,
    ok: 0,
    shed: 0,
    deadline: 0,
    errors: 0,
    seconds,
    p50: Number.NaN,
    p99: Number.NaN,
    okAfterDeadline: 0,
    retryHints: [],
  };
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + seconds * 1000;
  const one = (): void => {
    r.sent++;
    const t = performance.now();
    const p = call(DEADLINE_MS).then(({ outcome, retryAfterMs }) => {
      const ms = performance.now() - t;
      r[outcome === 'ok' ? 'ok' : outcome === 'shed' ? 'shed' : outcome === 'deadline' ? 'deadline' : 'errors']++;
      if (outcome === 'ok') {
        latencies.push(ms);
        if (ms > DEADLINE_MS) r.okAfterDeadline++;
      }
      if (retryAfterMs !== undefined && r.retryHints.length < 10_000) r.retryHints.push(retryAfterMs);
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    while (r.sent < due) one();
    await new Promise((res) => setTimeout(res, 2));
  }
  r.seconds = (performance.now() - start) / 1000;
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  r.p50 = percentile(latencies, 50);
  r.p99 = percentile(latencies, 99);
  return r;
}

async function main(): Promise<void> {
  const bench = await startRankingBenchStack();
  const { shop, rankingRaw, rankingOnce } = bench;
  try {
    // Requests encoded ahead, one per user: the generator's own protobuf work would take the cores it
    // measures (it shares the machine with the stack).
    const requests = shop.users.map((u) =>
      Buffer.from(
        rankingV1.RecommendRequest.encode(
          rankingV1.RecommendRequest.fromPartial({ tenant: '', userId: u.userId, limit: 10 }),
        ).finish(),
      ),
    );
    let k = 0;
    const next = () => requests[k++ % requests.length] as Buffer;
    const recommend = async (deadlineMs: number): Promise<{ outcome: Outcome; retryAfterMs?: number }> => {
      try {
        await rankingOnce('recommend', next(), deadlineMs);
        return { outcome: 'ok' };
      } catch (err) {
        if (!isGrpcError(err)) return { outcome: 'error' };
        if (err.code === grpc.status.RESOURCE_EXHAUSTED) {
          const hint = Number(err.metadata.get('grpc-retry-pushback-ms')[0]);
          return { outcome: 'shed', ...(Number.isFinite(hint) ? { retryAfterMs: hint } : {}) };
        }
        return { outcome: err.code === grpc.status.DEADLINE_EXCEEDED ? 'deadline' : 'error' };
      }
    };
    // Steady state (every user served once, the stack idle), then ranking on a core of its own unless
    // BENCH_ISOLATE=0: on a 2-core machine an open-loop generator at 4x capacity would otherwise take the
    // capacity it measures.
    await load(() => rankingRaw('recommend', next()), { concurrency: 8, count: requests.length, warmup: 0 });
    const settledSeconds = await bench.settle();
    const isolated = process.env['BENCH_ISOLATE'] !== '0' && bench.isolateRanking();
    process.stdout.write(`idle after ${settledSeconds.toFixed(1)} s; ranking on its own core: ${isolated}\n`);
    const unloaded = await load(() => recommend(DEADLINE_MS * 4), { concurrency: 1, seconds: SECONDS });
    const capacityCpu0 = bench.rankingCpuMs() ?? 0;
    const c16 = await load(() => rankingRaw('recommend', next(), DEADLINE_MS * 4), {
      concurrency: 16,
      seconds: SECONDS,
    });
    const capacityCores = ((bench.rankingCpuMs() ?? 0) - capacityCpu0) / 1000 / c16.seconds;
    const capacity = c16.qps;
    process.stdout.write(
      `capacity (closed loop, c=16): ${capacity.toFixed(0)} qps; unloaded p99 ${unloaded.p99.toFixed(2)} ms\n`,
    );
    const rows: Row[] = [
      { what: 'unloaded (c=1)', 'offered qps': '', 'admitted qps': Math.round(unloaded.qps), 'p99 ms': unloaded.p99 },
      {
        what: 'capacity (c=16, closed loop)',
        'offered qps': '',
        'admitted qps': Math.round(capacity),
        'p99 ms': c16.p99,
        'ranking cores busy': Number(capacityCores.toFixed(2)),
      },
    ];
    const results: Record<
      string,
      OpenLoopResult & { lateServer: number; stoppedServer: number; rankingCpuShare: number }
    > = {};
    for (const factor of [2, 4]) {
      const server = async () => {
        const m = await bench.rankingMetrics();
        return {
          late: counterValue(m, 'aisle_grpc_server_late_responses_total', { method: 'Recommend' }),
          stopped: counterValue(m, 'aisle_grpc_server_shed_total', { method: 'Recommend', reason: 'stopped' }),
        };
      };
      const s0 = await server();
      const cpu0 = bench.rankingCpuMs() ?? 0;
      const r = await openLoop(recommend, capacity * factor, SECONDS);
      const cpu1 = bench.rankingCpuMs() ?? 0;
      const s1 = await server();
      const before = s0.late;
      const after = s1.late;
      results[`x${factor}`] = {
        ...r,
        lateServer: after - before,
        stoppedServer: s1.stopped - s0.stopped,
        rankingCpuShare: (cpu1 - cpu0) / 1000 / r.seconds,
      };
      const admitted = r.ok / r.seconds;
      const hints = [...r.retryHints].sort((a, b) => a - b);
      rows.push({
        what: `${factor}x capacity (open loop)`,
        'offered qps': Math.round(r.sent / r.seconds),
        'admitted qps': Math.round(admitted),
        'admitted / capacity': Number((admitted / capacity).toFixed(3)),
        'p99 ms': r.p99,
        'p99 / unloaded': Number((r.p99 / unloaded.p99).toFixed(2)),
        'shed share': Number((r.shed / Math.max(1, r.sent)).toFixed(3)),
        'deadline exceeded': r.deadline,
        errors: r.errors,
        // The server's count is the judge; the client's own clock lags when the load generator is starved.
        'answered after deadline': after - before,
        // Admitted, then stopped between stages when the deadline passed (not answered: DEADLINE_EXCEEDED).
        'stopped at deadline': s1.stopped - s0.stopped,
        'ranking cores busy': Number(((cpu1 - cpu0) / 1000 / r.seconds).toFixed(2)),
        'client saw ok > deadline': r.okAfterDeadline,
        'retry hint p50 ms': hints.length > 0 ? percentile(hints, 50) : '',
      });
      process.stdout.write(
        `${factor}x: offered ${(r.sent / r.seconds).toFixed(0)} qps, admitted ${admitted.toFixed(0)} qps, p99 ${r.p99.toFixed(2)} ms, shed ${r.shed}, deadline ${r.deadline}, late ${after - before} (client clock: ${r.okAfterDeadline})\n`,
      );
    }
    rows.push({
      what: 'goals',
      'admitted / capacity': '>= 0.9',
      'p99 / unloaded': '<= 3',
      'answered after deadline': 0,
    });
    report('overload', rows, {
      deadlineMs: DEADLINE_MS,
      capacity,
      unloadedP99: unloaded.p99,
      rankingOnOwnCore: isolated,
      settledSeconds,
      rankingEnv: bench.rankingEnv,
      results,
    });
  } finally {
    await bench.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
