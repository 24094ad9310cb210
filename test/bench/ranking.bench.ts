/**
 * `pnpm bench ranking`: the platform's gRPC API under load, against a bare grpc-js echo server measured in
 * the same run. Rank of 100 and 300 items at concurrency 1 (latency), Recommend at 1/16/64 (throughput).
 */
import { featureV1, rankingV1 } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { startLocalStack } from '@aisle/local-stack';
import { createGrpcClient, grpc } from '@aisle/runtime';
import { eventually, healthCheck, publishShop, repoRoot, runJobProcess, tempSqliteUrl } from '@aisle/testkit';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { load, type LoadResult } from './load';
import { report, type Row } from './report';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 8);

async function main(): Promise<void> {
  const storeFile = tempSqliteUrl();
  // BENCH_PROFILE=<dir>: CPU profiles of ranking, feature and embedding-inference (written at shutdown).
  const profileDir = process.env['BENCH_PROFILE'];
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : undefined;
  const stack = await startLocalStack({
    storeUrl: storeFile.url,
    ...(prof ? { nodeArgs: { ranking: prof, feature: prof, 'embedding-inference': prof } } : {}),
  });
  const echo = spawn(process.execPath, [join(repoRoot, 'test', 'dist', 'bench', 'echo-server.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const shop = generateShop({ seed: 3, users: 1000, items: 1000, days: 60 });
    process.stdout.write(`setting up: ${shop.events.length} events, ${shop.items.length} items, training ...\n`);
    const nc = await connect({ servers: stack.nats.url, noAsyncTraces: true });
    await publishShop(jetstream(nc), shop.items, shop.events);
    const jsm = await jetstreamManager(nc);
    await eventually(
      async () => {
        const c = await jsm.consumers.info('EVENTS', 'feature');
        return (
          (await jsm.streams.info('EVENTS')).state.messages >= shop.events.length + shop.items.length &&
          c.num_pending === 0 &&
          c.num_ack_pending === 0
        );
      },
      { timeoutMs: 600_000, intervalMs: 500 },
    );
    await nc.close();
    const trained = await runJobProcess('trainer', { ...stack.env(), AISLE_TRAINER_SASREC_EPOCHS: '4' });
    if (trained.code !== 0)
      throw new Error(`trainer failed (${trained.code}): ${trained.stderr} ${JSON.stringify(trained.logs.slice(-3))}`);
    await eventually(
      async () =>
        (await healthCheck(`127.0.0.1:${stack.embeddingPort}`, 'aisle.embedding.v1.EmbeddingService')) === 'SERVING',
      { timeoutMs: 60_000 },
    );
    await eventually(() => stack.services.ranking.logs.some((l) => l['msg'] === 'model active'), { timeoutMs: 60_000 });

    const echoPort = await new Promise<number>((resolve) =>
      echo.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))),
    );
    const echoClient = new grpc.Client(`127.0.0.1:${echoPort}`, grpc.credentials.createInsecure());
    const payload = Buffer.from(
      rankingV1.RecommendRequest.encode(
        rankingV1.RecommendRequest.fromPartial({ userId: 'u0001', limit: 10 }),
      ).finish(),
    );
    const identity = (b: Buffer) => b;
    const echoCall = () =>
      new Promise<Buffer>((resolve, reject) =>
        echoClient.makeUnaryRequest('/bench.Echo/Echo', identity, identity, payload, (err, res) =>
          err ? reject(err) : resolve(res as Buffer),
        ),
      );

    const ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${stack.services.ranking.grpcPort}`, {
      deadlineMs: 5000,
    });
    const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${stack.services.feature.grpcPort}`, {
      deadlineMs: 5000,
    });
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
    ranking.close();
    features.close();
    echoClient.close();
  } finally {
    echo.kill('SIGTERM');
    await stack.stop();
    storeFile.dispose();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
