/**
 * The stack the ranking benchmarks measure: every service as a process on one embedded store, a generated
 * shop published through ingest, models trained and hot-loaded, and a bare grpc-js echo server (the
 * ceiling) in its own process.
 */
import { featureV1, rankingV1 } from '@aisle/contracts';
import { generateShop, type Shop } from '@aisle/datagen';
import { startLocalStack, type LocalStack } from '@aisle/local-stack';
import { createGrpcClient, grpc } from '@aisle/runtime';
import { eventually, healthCheck, publishShop, repoRoot, runJobProcess, tempSqliteUrl } from '@aisle/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

type RawCall = (
  method: keyof typeof rankingV1.RankingServiceService,
  request: Buffer,
  deadlineMs?: number,
) => Promise<Buffer>;

/**
 * The retry policy a backend should give its ranking channel (grpc service config): RESOURCE_EXHAUSTED
 * from admission control is retried, after the server's `grpc-retry-pushback-ms` when it sends one.
 */
export const RANKING_RETRY_SERVICE_CONFIG = {
  methodConfig: [
    {
      name: [{ service: 'aisle.ranking.v1.RankingService' }],
      retryPolicy: {
        maxAttempts: 5,
        initialBackoff: '0.005s',
        maxBackoff: '0.1s',
        backoffMultiplier: 2,
        retryableStatusCodes: ['RESOURCE_EXHAUSTED'],
      },
    },
  ],
};

export interface RankingBenchStack {
  stack: LocalStack;
  shop: Shop;
  /** Environment given to the ranking process beyond the stack's (BENCH_RANKING_*). */
  rankingEnv: Record<string, string>;
  ranking: ReturnType<typeof createGrpcClient<typeof rankingV1.RankingServiceService>>;
  features: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;
  /** One call to the echo server (the ceiling), with a Recommend-sized payload. */
  echoCall: () => Promise<Buffer>;
  /**
   * One call to ranking with an encoded request, answering the encoded response: the client the echo
   * ceiling is measured with (no protobuf work in the timed call), so the two compare like for like.
   */
  rankingRaw: RawCall;
  /** The same without retries (the overload generator's). */
  rankingOnce: RawCall;
  /** CPU time (user + system, ms) the ranking process has used so far; undefined without /proc. */
  rankingCpuMs: () => number | undefined;
  /** CPU time (ms) each process has used so far: the stack's services, nats-server, the echo and this one. */
  processCpuMs: () => Record<string, number>;
  /**
   * Waits until the stack is idle (its processes together use under 15 % of a core over a second, twice
   * in a row, about what six idle services use; at most `timeoutMs`): background work after training (re-warming every user's retrieval for the
   * new model, say) would otherwise be measured as request latency. Answers the seconds waited.
   */
  settle(timeoutMs?: number): Promise<number>;
  /**
   * Gives the ranking process core `core` to itself and puts every other process of the stack and this
   * one on the others (Linux `taskset`; answers false where it cannot), so that a load generator on the
   * same machine does not take the capacity it measures.
   */
  isolateRanking(core?: number): boolean;
  /** The ranking process's Prometheus text. */
  rankingMetrics: () => Promise<string>;
  /** The feature process's Prometheus text. */
  featureMetrics: () => Promise<string>;
  stop(): Promise<void>;
}

/** A Prometheus counter's value in `metrics` (text format), summed over the series carrying `labels`. */
export function counterValue(metrics: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const m of metrics.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)`, 'gm'))) {
    const have = m[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) total += Number(m[2]);
  }
  return total;
}

/** CPU time (user + system, ms) a process has used so far; undefined without /proc. */
function cpuMs(pid: number | undefined): number | undefined {
  try {
    // utime and stime, in clock ticks (100 per second), after the command name.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

export async function startRankingBenchStack(
  opts: { ranking?: Record<string, string> } = {},
): Promise<RankingBenchStack> {
  const storeFile = tempSqliteUrl();
  // BENCH_PROFILE=<dir>: CPU profiles of ranking, feature and embedding-inference (written at shutdown).
  const profileDir = process.env['BENCH_PROFILE'];
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : undefined;
  // BENCH_RANKING_<NAME>=v: AISLE_<NAME>=v for the ranking process only (its admission limits, say);
  // BENCH_RANKING_NODE_OPTIONS=v replaces its NODE_OPTIONS (V8 settings, for an A/B of them).
  const rankingEnv = {
    ...Object.fromEntries(
      Object.entries(process.env)
        .filter(([k, v]) => k.startsWith('BENCH_RANKING_') && v !== undefined)
        .map(([k, v]) => [
          k === 'BENCH_RANKING_NODE_OPTIONS' ? 'NODE_OPTIONS' : `AISLE_${k.slice('BENCH_RANKING_'.length)}`,
          v as string,
        ]),
    ),
    ...opts.ranking,
  };
  const stack = await startLocalStack({
    storeUrl: storeFile.url,
    ranking: rankingEnv,
    ...(prof ? { nodeArgs: { ranking: prof, feature: prof, 'embedding-inference': prof } } : {}),
  });
  const echo = spawn(process.execPath, [join(repoRoot, 'test', 'dist', 'bench', 'echo-server.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const shop = generateShop({ seed: 3, users: 1000, items: 1000, days: 60 });
  process.stdout.write(`setting up: ${shop.events.length} events, ${shop.items.length} items, training ...\n`);
  const nc = await connect({ servers: stack.nats.url, noAsyncTraces: true });
  await publishShop(jetstream(nc), shop.items, shop.events);
  const jsm = await jetstreamManager(nc);
  await eventually(
    async () => {
      const c = await jsm.consumers.info('EVENTS', 'feature');
      return (
        (await jsm.streams.info('EVENTS')).state.messages >= shop.events.length &&
        (await jsm.streams.info('ITEMS')).state.messages >= shop.items.length &&
        c.num_pending === 0 &&
        c.num_ack_pending === 0
      );
    },
    { timeoutMs: 600_000, intervalMs: 500 },
  );
  await nc.close();
  // Serving cost is measured with every model loaded, whether or not it beats co-visitation here.
  const trained = await runJobProcess('trainer', {
    ...stack.env(),
    AISLE_TRAINER_SASREC_EPOCHS: '4',
    AISLE_TRAINER_BEAT_BASELINE: 'false',
  });
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
    rankingV1.RecommendRequest.encode(rankingV1.RecommendRequest.fromPartial({ userId: 'u0001', limit: 10 })).finish(),
  );
  const identity = (b: Buffer) => b;
  const rankingAddress = `127.0.0.1:${stack.services.ranking.grpcPort}`;
  // As a backend should call ranking: RESOURCE_EXHAUSTED (ranking's admission control) is retried after
  // the server's grpc-retry-pushback-ms hint (grpc-js honours it), within the call's deadline.
  const rankingRawClient = new grpc.Client(rankingAddress, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify(RANKING_RETRY_SERVICE_CONFIG),
  });
  // The overload generator's: no retries (an open-loop generator offers its rate whatever the answers).
  const rankingOnceClient = new grpc.Client(rankingAddress, grpc.credentials.createInsecure(), {
    'grpc.enable_retries': 0,
  });
  const raw =
    (client: grpc.Client): RawCall =>
    (method, request, deadlineMs = 5000) =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          rankingV1.RankingServiceService[method].path,
          identity,
          identity,
          request,
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err ? reject(err) : resolve(res as Buffer)),
        ),
      );
  const rankingPid = stack.services.ranking.child.pid;
  const stackPids = Object.values(stack.services).map((s) => s.child.pid);
  const ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${stack.services.ranking.grpcPort}`, {
    deadlineMs: 5000,
  });
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${stack.services.feature.grpcPort}`, {
    deadlineMs: 5000,
  });
  return {
    stack,
    shop,
    rankingEnv,
    ranking,
    features,
    echoCall: () =>
      new Promise<Buffer>((resolve, reject) =>
        echoClient.makeUnaryRequest('/bench.Echo/Echo', identity, identity, payload, (err, res) =>
          err ? reject(err) : resolve(res as Buffer),
        ),
      ),
    rankingRaw: raw(rankingRawClient),
    rankingOnce: raw(rankingOnceClient),
    rankingCpuMs: () => cpuMs(rankingPid),
    processCpuMs: () => {
      const pids: Record<string, number | undefined> = {
        ...Object.fromEntries(Object.entries(stack.services).map(([name, s]) => [name, s.child.pid])),
        nats: stack.nats.pid,
        echo: echo.pid,
        client: process.pid,
      };
      return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid) ?? 0]));
    },
    async settle(timeoutMs = 90_000) {
      const start = performance.now();
      const total = () => stackPids.reduce((sum: number, pid) => sum + (cpuMs(pid) ?? 0), 0);
      let quiet = 0;
      while (quiet < 2 && performance.now() - start < timeoutMs) {
        const before = total();
        await new Promise((res) => setTimeout(res, 1000));
        quiet = total() - before < 150 ? quiet + 1 : 0;
      }
      return (performance.now() - start) / 1000;
    },
    isolateRanking(core = 1) {
      const cores = os.availableParallelism();
      if (cores < 2 || core >= cores) return false;
      const others = Array.from({ length: cores }, (_, i) => i)
        .filter((i) => i !== core)
        .join(',');
      const pin = (cpus: string, pid: number | undefined) =>
        pid !== undefined &&
        spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
      const rest = [...stackPids.filter((pid) => pid !== rankingPid), stack.nats.pid, echo.pid, process.pid];
      return pin(String(core), rankingPid) && rest.every((pid) => pin(others, pid));
    },
    rankingMetrics: async () => (await fetch(`http://127.0.0.1:${stack.services.ranking.metricsPort}/metrics`)).text(),
    featureMetrics: async () => (await fetch(`http://127.0.0.1:${stack.services.feature.metricsPort}/metrics`)).text(),
    async stop() {
      ranking.close();
      features.close();
      echoClient.close();
      rankingRawClient.close();
      rankingOnceClient.close();
      echo.kill('SIGTERM');
      await stack.stop();
      storeFile.dispose();
    },
  };
}
