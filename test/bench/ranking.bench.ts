/**
 * `pnpm bench ranking`: the platform's gRPC API under load, against a bare grpc-js echo server measured in
 * the same run. Rank of 100 and 300 items at concurrency 1 (latency), Recommend at 1/16/64 (throughput).
 */
import { load, type LoadResult } from './load';
import { startRankingBenchStack } from './ranking-stack';
import { report, type Row } from './report';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);

async function main(): Promise<void> {
  const bench = await startRankingBenchStack();
  const { shop, ranking, features, echoCall } = bench;
  try {
    const users = shop.users.map((u) => u.userId);
    let k = 0;
    const user = () => users[k++ % users.length] as string;
    const popular = (await features.listPopularItems({ tenant: '', category: '', limit: 500 })).items.map(
      (i) => i.itemId,
    );
    const itemsFor = (n: number) => {
      const pool = [...popular, ...shop.items.map((i) => i.itemId)];
      return Array.from({ length: n }, (_, i) => pool[(i * 7 + k) % pool.length] as string);
    };
    const rank100 = itemsFor(100);
    const rank300 = itemsFor(300);
    let degraded = 0;
    const recommend = async () => {
      const r = await ranking.recommend({
        tenant: '',
        userId: user(),
        limit: 10,
        filters: undefined,
        context: {},
        explain: false,
        sessionItemIds: [],
      });
      if (r.degraded) degraded++;
    };
    const rows: Row[] = [];
    const add = (what: string, concurrency: number, r: LoadResult, goal = '') => {
      rows.push({
        what,
        concurrency,
        calls: r.calls,
        errors: r.errors,
        qps: Math.round(r.qps),
        'p50 ms': r.p50,
        'p90 ms': r.p90,
        'p99 ms': r.p99,
        goal,
      });
      process.stdout.write(
        `${what} c=${concurrency}: ${Math.round(r.qps)} qps, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms\n`,
      );
    };
    const results: Record<string, LoadResult> = {};
    results['rank100'] = await load(
      () => ranking.rank({ tenant: '', userId: user(), itemIds: rank100, explain: false }),
      { concurrency: 1, count: 2000 },
    );
    add('Rank 100 items', 1, results['rank100'], 'p99 <= 5 ms');
    results['rank300'] = await load(
      () => ranking.rank({ tenant: '', userId: user(), itemIds: rank300, explain: false }),
      { concurrency: 1, count: 2000 },
    );
    add('Rank 300 items', 1, results['rank300'], 'p99 <= 10 ms');
    for (const c of [1, 16, 64]) {
      results[`echo${c}`] = await load(echoCall, { concurrency: c, seconds: SECONDS });
      add('grpc-js echo (ceiling)', c, results[`echo${c}`] as LoadResult);
      results[`rec${c}`] = await load(recommend, { concurrency: c, seconds: SECONDS });
      add('Recommend', c, results[`rec${c}`] as LoadResult, c === 16 ? '>= 0.25 x echo QPS' : '');
    }
    const ratio16 = (results['rec16']?.qps ?? 0) / (results['echo16']?.qps ?? 1);
    rows.push({
      what: 'Recommend / echo QPS at c=16',
      concurrency: 16,
      qps: Number(ratio16.toFixed(3)),
      goal: '>= 0.25',
    });
    report('ranking', rows, {
      users: users.length,
      items: shop.items.length,
      events: shop.events.length,
      degradedResponses: degraded,
      ratioRecommendToEchoAt16: ratio16,
    });
  } finally {
    await bench.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
