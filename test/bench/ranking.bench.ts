/**
 * `pnpm bench ranking`: the platform's gRPC API under load, against a bare grpc-js echo server measured in
 * the same run. Rank of 100 and 300 items at concurrency 1 (latency), Recommend at 1/16/64 (throughput).
 * Ranking is called with encoded requests and its answers are decoded after the timed calls, as the echo
 * ceiling is (the client's protobuf work is not the server's latency); the ranking process's CPU time per
 * call is measured too (less sensitive to other processes on the machine than wall-clock latency). The
 * dependency calls that a request for a user not in ranking's memory waits for are measured apart. The
 * timed rows start once every user was served once and the stack is idle (steady state).
 */
import { embeddingV1, rankingV1 } from '@aisle/contracts';
import { createGrpcClient } from '@aisle/runtime';
import { load, type LoadResult } from './load';
import { counterValue, startRankingBenchStack } from './ranking-stack';
import { report, type Row } from './report';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);

async function main(): Promise<void> {
  const bench = await startRankingBenchStack();
  const { shop, features, echoCall, rankingRaw, rankingCpuMs, processCpuMs } = bench;
  const embedding = createGrpcClient(embeddingV1.EmbeddingServiceService, `127.0.0.1:${bench.stack.embeddingPort}`, {
    deadlineMs: 5000,
  });
  try {
    const users = shop.users.map((u) => u.userId);
    let k = 0;
    const user = () => users[k++ % users.length] as string;
    const popular = (await features.listPopularItems({ tenant: '', category: '', limit: 500 })).items.map(
      (i) => i.itemId,
    );
    // n distinct items, popular ones first (as a backend re-ranks what its own search found).
    const itemsFor = (n: number) => [...new Set([...popular, ...shop.items.map((i) => i.itemId)])].slice(0, n);
    // Requests encoded ahead, one per user; answers kept and checked after the timed calls.
    const encodeRank = (itemIds: string[]) =>
      users.map((userId) =>
        Buffer.from(
          rankingV1.RankRequest.encode(
            rankingV1.RankRequest.fromPartial({ tenant: '', userId, itemIds, explain: false }),
          ).finish(),
        ),
      );
    const rank100 = encodeRank(itemsFor(100));
    const rank300 = encodeRank(itemsFor(300));
    const recommendRequests = users.map((userId) =>
      Buffer.from(
        rankingV1.RecommendRequest.encode(
          rankingV1.RecommendRequest.fromPartial({ tenant: '', userId, limit: 10 }),
        ).finish(),
      ),
    );
    const answers: Array<{ surface: 'rank' | 'recommend'; bytes: Buffer; expect: number }> = [];
    const keep = (surface: 'rank' | 'recommend', bytes: Buffer, expect: number) => {
      if (answers.length < 20_000) answers.push({ surface, bytes, expect });
    };
    let n = 0;
    const rank = (requests: Buffer[], size: number) => async () =>
      keep('rank', await rankingRaw('rank', requests[n++ % requests.length] as Buffer), size);
    const recommend = async () =>
      keep('recommend', await rankingRaw('recommend', recommendRequests[n++ % recommendRequests.length] as Buffer), 10);

    const rows: Row[] = [];
    // Calls admission control refused (RESOURCE_EXHAUSTED), which the client retried after the hint.
    const shedTotal = async () =>
      counterValue(await bench.rankingMetrics(), 'aisle_grpc_server_shed_total', { reason: 'overloaded' });
    const results: Record<string, LoadResult> = {};
    // CPU ms per call of every process of the machine's stack, per row (where the cores went).
    const cpuPerCallByProcess: Record<string, Record<string, number>> = {};
    // Calls the feature service answered per timed call, by method (what ranking's caches did not hold).
    const featureCallsPerCall: Record<string, Record<string, number>> = {};
    const featureCalls = async (): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      const text = await bench.featureMetrics();
      for (const m of text.matchAll(/^aisle_grpc_server_handling_seconds_count\{([^}]*)\} (\d+)/gm)) {
        const method = /method="([^"]*)"/.exec(m[1] ?? '')?.[1] ?? '?';
        out[method] = (out[method] ?? 0) + Number(m[2]);
      }
      return out;
    };
    const measure = async (
      key: string,
      what: string,
      concurrency: number,
      call: () => Promise<unknown>,
      opts: { count?: number; goal?: string; cpu?: boolean } = {},
    ) => {
      const shed0 = await shedTotal();
      const feature0 = await featureCalls();
      const cpu0 = opts.cpu ? rankingCpuMs() : undefined;
      const all0 = processCpuMs();
      const r = await load(call, {
        concurrency,
        ...(opts.count !== undefined ? { count: opts.count } : { seconds: SECONDS }),
      });
      const cpu1 = opts.cpu ? rankingCpuMs() : undefined;
      const all1 = processCpuMs();
      const shed = (await shedTotal()) - shed0;
      const feature1 = await featureCalls();
      featureCallsPerCall[key] = Object.fromEntries(
        Object.entries(feature1)
          .map(([m, n]) => [m, Number(((n - (feature0[m] ?? 0)) / (r.calls + 50)).toFixed(3))] as const)
          .filter(([, n]) => n > 0),
      );
      cpuPerCallByProcess[key] = Object.fromEntries(
        Object.entries(all1).map(([p, ms]) => [p, Number(((ms - (all0[p] ?? 0)) / (r.calls + 50)).toFixed(3))]),
      );
      results[key] = r;
      const cpuPerCall = cpu0 !== undefined && cpu1 !== undefined ? (cpu1 - cpu0) / (r.calls + 50) : undefined;
      rows.push({
        what,
        concurrency,
        calls: r.calls,
        errors: r.errors,
        qps: Math.round(r.qps),
        'p50 ms': r.p50,
        'p90 ms': r.p90,
        'p99 ms': r.p99,
        'ranking cpu ms/call': cpuPerCall === undefined ? '' : Number(cpuPerCall.toFixed(3)),
        // Calls ranking's admission control refused (RESOURCE_EXHAUSTED), retried by the client after the hint.
        'shed, retried': opts.cpu ? shed : '',
        goal: opts.goal ?? '',
      });
      process.stdout.write(
        `${what} c=${concurrency}: ${Math.round(r.qps)} qps, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; cpu ms/call ${Object.entries(
          cpuPerCallByProcess[key] ?? {},
        )
          .filter(([, ms]) => ms >= 0.01)
          .map(([p, ms]) => `${p} ${ms}`)
          .join(', ')}; feature calls/call ${
          Object.entries(featureCallsPerCall[key] ?? {})
            .map(([m, n]) => `${m} ${n}`)
            .join(', ') || 'none'
        }\n`,
      );
    };
    // Steady state: every user has been served once on each surface (their context, retrieval and co-visit
    // lists are in ranking's memory,
    // as an active shop's are), and the background work after training has ended. What a user not in
    // memory costs is measured apart, at the end.
    let w = 0;
    await load(() => rankingRaw('recommend', recommendRequests[w++ % recommendRequests.length] as Buffer), {
      concurrency: 8,
      count: users.length,
      warmup: 0,
    });
    await load(() => rankingRaw('rank', rank300[w++ % rank300.length] as Buffer), {
      concurrency: 8,
      count: users.length,
      warmup: 0,
    });
    const settledSeconds = await bench.settle();
    process.stdout.write(`warmed ${users.length} users; idle after ${settledSeconds.toFixed(1)} s\n`);
    await measure('echo1', 'grpc-js echo (ceiling)', 1, echoCall, { count: 2000 });
    await measure('rank100', 'Rank 100 items', 1, rank(rank100, 100), { count: 2000, goal: 'p99 <= 5 ms', cpu: true });
    await measure('rank300', 'Rank 300 items', 1, rank(rank300, 300), { count: 2000, goal: 'p99 <= 10 ms', cpu: true });
    for (const c of [1, 16, 64]) {
      await measure(`echo${c}`, 'grpc-js echo (ceiling)', c, echoCall);
      await measure(`rec${c}`, 'Recommend', c, recommend, {
        cpu: true,
        ...(c === 16 ? { goal: '>= 0.25 x echo QPS' } : {}),
      });
    }
    // What a request for a user not in ranking's memory waits for, one after the other: the user's context
    // from feature, then the sequence retrieval of their history from embedding-inference.
    let histories: string[][] = [];
    await measure(
      'coldContext',
      'cold user: feature GetUserContext',
      1,
      async () => {
        const r = await features.getUserContext({
          tenant: '',
          userId: user(),
          recentLimit: 0,
          coVisitItems: 5,
          coVisitLimit: 30,
        });
        if (histories.length < users.length) histories.push((r.user?.recent ?? []).map((e) => e.itemId).slice(-50));
      },
      { count: 1000 },
    );
    histories = histories.filter((h) => h.length > 0);
    let h = 0;
    await measure(
      'coldRetrieve',
      'cold user: embedding Retrieve k=300',
      1,
      () =>
        embedding.retrieve({
          tenant: '',
          sequence: { itemIds: histories[h++ % histories.length] ?? [] },
          k: 300,
          excludeItemIds: [],
          index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_SEQUENCE,
        }),
      { count: 1000 },
    );

    // Every answer kept is a whole, decodable answer of the size asked.
    let degraded = 0;
    let wrong = 0;
    for (const a of answers) {
      const r =
        a.surface === 'rank' ? rankingV1.RankResponse.decode(a.bytes) : rankingV1.RecommendResponse.decode(a.bytes);
      if (r.degraded) degraded++;
      if (r.items.length !== a.expect) wrong++;
    }
    if (wrong > 0) throw new Error(`${wrong} of ${answers.length} answers had fewer items than asked`);
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
      answersChecked: answers.length,
      settledSeconds,
      rankingEnv: bench.rankingEnv,
      cpuPerCallByProcess,
      featureCallsPerCall,
      degradedResponses: degraded,
      ratioRecommendToEchoAt16: ratio16,
    });
  } finally {
    embedding.close();
    await bench.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
