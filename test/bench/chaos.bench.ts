/**
 * `pnpm bench chaos`: the whole stack under a steady producer, first calm (the ceiling: what the same
 * stack does with no fault, measured in the same run), then while every service and nats-server in turn
 * is killed and restarted and frozen (SIGSTOP) and continued, for BENCH_ROUNDS rounds. Prints per
 * service the RPC outcomes and latencies (chaos against calm), how long each fault took to heal, and
 * checks at the end that nothing was lost or doubled and every service is SERVING.
 */
import { Streams } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { openStore, STORE_PORTS } from '@aisle/store';
import { publishShop, tempSqliteUrl } from '@aisle/testkit';
import { connectTestBus, consumerCaughtUp } from '../support/bus';
import {
  allServing,
  applyFault,
  excused,
  RpcProber,
  SERVICES,
  startChaosStack,
  SteadyProducer,
  violations,
  type Fault,
  type Outcome,
  type Target,
} from '../support/chaos';
import { report, type Row } from './report';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2);
const RATE = Number(process.env['BENCH_RATE'] ?? 100);
const WARMUP_MS = Number(process.env['BENCH_WARMUP_MS'] ?? 10_000);
const CALM_MS = Number(process.env['BENCH_CALM_MS'] ?? 20_000);
const HOLD_MS = Number(process.env['BENCH_HOLD_MS'] ?? 4000);
const DEADLINE_MS = 1000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number) : 0;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const shop = generateShop({ seed: 12, users: 200, items: 150, days: 120 });
  const storeFile = tempSqliteUrl();
  const stack = await startChaosStack(storeFile.url);
  try {
    const bus = await connectTestBus(stack.nats.url);
    await publishShop(bus.js, shop.items, []);
    const producer = new SteadyProducer(stack.nats.url, stack.address('ingest'), shop.events, {
      perSecond: RATE,
      trackEvery: 10,
    });
    const userId = shop.events[0]?.userId ?? 'u1';
    await producer.start();
    // Warm-up (the catalog lands, code gets compiled), not measured.
    const warm = new RpcProber(stack, { everyMs: 250, deadlineMs: DEADLINE_MS, userId });
    warm.start();
    await sleep(WARMUP_MS);
    await warm.stop();

    // Calm: the ceiling for latencies and throughput on this machine, in this run.
    const calm = new RpcProber(stack, { everyMs: 250, deadlineMs: DEADLINE_MS, userId });
    const calmStart = Date.now();
    const ackedBeforeCalm = producer.acked.size;
    calm.start();
    await sleep(CALM_MS);
    await calm.stop();
    const calmRate = ((producer.acked.size - ackedBeforeCalm) * 1000) / (Date.now() - calmStart);

    const chaos = new RpcProber(stack, { everyMs: 250, deadlineMs: DEADLINE_MS, userId });
    const faults: Array<Fault & { healedMs: number }> = [];
    const chaosStart = Date.now();
    const ackedBeforeChaos = producer.acked.size;
    chaos.start();
    const targets: Target[] = [...SERVICES, 'nats-server'];
    for (let round = 0; round < ROUNDS; round++)
      for (const target of targets)
        for (const kind of ['kill', 'stop'] as const) {
          const fault = await applyFault(
            stack,
            target,
            kind,
            kind === 'stop' ? HOLD_MS : target === 'nats-server' ? HOLD_MS : 0,
          );
          await allServing(stack, 120_000);
          faults.push({ ...fault, healedMs: Date.now() - fault.to });
          process.stderr.write(`round ${round + 1}: ${kind} ${target} healed in ${Date.now() - fault.to} ms\n`);
          await sleep(1000);
        }
    await chaos.stop();
    const chaosRate = ((producer.acked.size - ackedBeforeChaos) * 1000) / (Date.now() - chaosStart);
    const sent = await producer.stop();

    // Nothing lost or doubled.
    const acked = new Set(producer.acked);
    const store = await openStore(storeFile.url, STORE_PORTS);
    const until = Date.now() + 180_000;
    while ((await store.events.count()) < acked.size && Date.now() < until) await sleep(500);
    while (!(await consumerCaughtUp(bus.jsm, Streams.EVENTS.name, 'feature')) && Date.now() < until) await sleep(500);
    const stored = new Set<string>();
    for await (const e of store.events.scan()) stored.add(e.eventId);
    await store.close();
    const lost = [...acked].filter((id) => !stored.has(id)).length;
    const unexpected = [...stored].filter((id) => !acked.has(id)).length;
    const downstream = (await bus.jsm.streams.info(Streams.EVENTS.name)).state.messages;
    await bus.nc.close();
    const serving = await allServing(stack, 60_000);

    const judging = { deadlineMs: DEADLINE_MS, marginMs: 250, graceMs: 3000, stalls: chaos.stalls };
    const bad = violations(chaos.outcomes, faults, judging);
    const excusedOf = (o: Outcome) => excused(o, faults, judging);
    const rows: Row[] = SERVICES.map((service) => {
      const c = calm.outcomes.filter((o) => o.service === service);
      const x = chaos.outcomes.filter((o) => o.service === service);
      const judged = x.filter((o) => !excusedOf(o));
      const calmP99 = pct(
        c.map((o) => o.ms),
        99,
      );
      const chaosP99 = pct(
        judged.map((o) => o.ms),
        99,
      );
      return {
        service,
        calm_calls: c.length,
        calm_p99_ms: calmP99,
        chaos_calls: x.length,
        excused: x.length - judged.length,
        ok: judged.filter((o) => o.code === 'OK').length,
        unavailable: judged.filter((o) => o.code === 'UNAVAILABLE').length,
        other_answers: judged.filter((o) => o.code !== 'OK' && o.code !== 'UNAVAILABLE').length,
        chaos_p99_ms: chaosP99,
        p99_vs_calm: calmP99 > 0 ? chaosP99 / calmP99 : 0,
        max_ms: Math.max(0, ...judged.map((o) => o.ms)),
        violations: bad.filter((o) => o.service === service).length,
      };
    });
    const healing: Row[] = targets.flatMap((target) =>
      (['kill', 'stop'] as const).map((kind) => {
        const fs = faults.filter((f) => f.target === target && f.kind === kind);
        return {
          target,
          fault: kind === 'kill' ? 'SIGKILL + restart' : `SIGSTOP ${HOLD_MS} ms`,
          faults: fs.length,
          down_ms_median: pct(
            fs.map((f) => f.to - f.from),
            50,
          ),
          healed_ms_max: Math.max(0, ...fs.map((f) => f.healedMs)),
        };
      }),
    );
    report('chaos-healing', healing);
    report('chaos', rows, {
      producer: {
        rate_per_s_wanted: RATE,
        calm_rate_per_s: calmRate,
        chaos_rate_per_s: chaosRate,
        chaos_vs_calm: calmRate > 0 ? chaosRate / calmRate : 0,
        sent,
        retried_sends: producer.failures,
        longest_stall_ms: producer.longestStallMs,
      },
      integrity: {
        acknowledged: acked.size,
        stored: stored.size,
        lost,
        unexpected,
        republished_downstream: downstream,
      },
      serving,
      faults,
      prober_stalls: chaos.stalls,
      // Each with the faults under way at the time, for reading.
      violations: bad.map((o) => ({
        ...o,
        during: faults.filter((f) => o.at <= f.to + 3000 && o.at + o.ms >= f.from).map((f) => `${f.kind} ${f.target}`),
      })),
    });
    process.stdout.write(
      `\nproducer: ${calmRate.toFixed(1)}/s calm, ${chaosRate.toFixed(1)}/s under chaos (x${(chaosRate / calmRate).toFixed(2)}), ` +
        `${producer.failures} retried sends, longest stall ${producer.longestStallMs} ms\n` +
        `integrity: ${acked.size} acknowledged, ${stored.size} stored, ${lost} lost, ${unexpected} unexpected, ${downstream} republished\n` +
        `serving at the end: ${JSON.stringify(serving)}\n`,
    );
    if (
      lost ||
      unexpected ||
      downstream !== acked.size ||
      bad.length ||
      Object.values(serving).some((s) => s !== 'SERVING')
    )
      process.exitCode = 1;
  } finally {
    await stack.stop();
    storeFile.dispose();
  }
}

void main();
