import { experimentV1, rankingV1, Subjects } from '@aisle/contracts';
import { Rng, shoppers, type Shop } from '@aisle/datagen';
import { createGrpcClient } from '@aisle/runtime';
import { eventually, runJobProcess } from '@aisle/testkit';
import type { JetStreamClient } from '@nats-io/jetstream';

type Out = (s?: string) => void;

const est = (e: experimentV1.Estimate | undefined, digits = 3) =>
  e ? `${e.value.toFixed(digits)} [${e.lower.toFixed(digits)}, ${e.upper.toFixed(digits)}]` : '-';

/** Prints an experiment's result: per arm with 95 % intervals, the interleaving preference, the checks. */
export function printResult(out: Out, r: experimentV1.ExperimentResult): void {
  out(
    `   ${'arm'.padEnd(10)} ${'impressions'.padStart(11)} ${'clicks'.padStart(6)}  ${'CTR [95 % CI]'.padEnd(24)} ${'conversion [95 % CI]'.padEnd(24)} revenue per 1,000 [95 % CI]`,
  );
  for (const a of r.arms)
    out(
      `   ${a.arm.padEnd(10)} ${String(a.impressions).padStart(11)} ${String(a.clicks).padStart(6)}  ${est(a.ctr).padEnd(24)} ${est(a.conversionRate).padEnd(24)} ${est(a.revenuePerMille, 1)}`,
    );
  const i = r.interleaving;
  if (i?.clicks) {
    const c = i.clicks;
    out(
      `   interleaving, ${i.requests} requests: ${i.armA} won ${c.winsA}, ${i.armB} won ${c.winsB}, ${c.ties} ties; ` +
        `preference for ${i.armA} ${est(c.preference)}, sign test p = ${c.pValue.toPrecision(3)}`,
    );
    if (i.purchases)
      out(
        `   by purchases: ${i.armA} won ${i.purchases.winsA}, ${i.armB} won ${i.purchases.winsB}, p = ${i.purchases.pValue.toPrecision(3)}`,
      );
  }
  const srm = r.sampleRatio;
  if (srm)
    out(
      `   sample ratio (${srm.counted}: ${srm.counts.map((c) => `${c.arm} ${c.observed}`).join(', ')}): chi-square ${srm.chiSquare.toFixed(2)}, p = ${srm.pValue.toPrecision(3)}${srm.mismatch ? '  MISMATCH' : ' (ok)'}`,
    );
  const tripped = r.guardrails.filter((g) => g.tripped);
  out(`   guardrails: ${tripped.length === 0 ? 'all within limits' : tripped.map((g) => g.reason).join('; ')}`);
  out(`   winner at alpha ${r.alpha}: ${r.winner || 'none (no significant difference yet)'}`);
}

/**
 * The trainer trains a second ranker (another seed) and, instead of promoting it, starts an interleaving
 * experiment against the active one; simulated shoppers of the generated shop (clicking by their planted
 * tastes) use Recommend and click, add to cart and buy through the clickstream, naming the request; the
 * experiment service joins it all and reports.
 */
export async function runExperimentDemo(opts: {
  out: Out;
  shop: Shop;
  env: Record<string, string>;
  rankingAddr: string;
  experimentAddr: string;
  js: JetStreamClient;
  requests: number;
}): Promise<void> {
  const { out } = opts;
  const id = 'ranker-seed-2';
  const t0 = performance.now();
  const trainer = await runJobProcess('trainer', {
    ...opts.env,
    AISLE_TRAINER_MODELS: 'ranker',
    AISLE_TRAINER_SEED: '2',
    AISLE_TRAINER_SASREC_EPOCHS: '10',
    AISLE_TRAINER_EXPERIMENT: id,
    AISLE_EXPERIMENT_ADDR: opts.experimentAddr,
  });
  if (trainer.code !== 0) throw new Error(`trainer failed (${trainer.code}): ${trainer.stderr}`);
  const entered = trainer.logs.find((l) => l['msg'] === 'candidate entered an experiment');
  if (!entered) throw new Error('the trainer did not start the experiment');
  out(
    `   the trainer stored ranker ${String(entered['version'])} (held-out ${String(entered['metric'])} ${Number(entered['candidate']).toFixed(3)}, active ${Number(entered['active']).toFixed(3)}) and started experiment '${id}' instead of promoting it (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );

  const ranking = createGrpcClient(rankingV1.RankingServiceService, opts.rankingAddr, { deadlineMs: 5000 });
  const experiments = createGrpcClient(experimentV1.ExperimentServiceService, opts.experimentAddr, {
    deadlineMs: 30_000,
  });
  try {
    // Ranking follows the definition and loads the pinned version; until then the arm falls back.
    await eventually(
      async () =>
        (
          await ranking.recommend({
            tenant: '',
            userId: opts.shop.users[0]!.userId,
            limit: 10,
            filters: undefined,
            context: {},
            explain: false,
            sessionItemIds: [],
          })
        ).modelVersion.startsWith('active='),
      { what: 'ranking interleaving the two versions', timeoutMs: 60_000 },
    );
    const people = shoppers(opts.shop);
    const rng = new Rng(2026);
    const traffic = people.traffic(rng, () => 0);
    let outcomes = 0;
    let served = 0;
    const t1 = performance.now();
    const worker = async (): Promise<void> => {
      while (served < opts.requests) {
        served++;
        const x = rng.next() * traffic.userWeights.reduce((a, b) => a + b, 0);
        let acc = 0;
        const userId = traffic.users.find((_, k) => (acc += traffic.userWeights[k] ?? 0) >= x) ?? traffic.users[0]!;
        const r = await ranking.recommend({
          tenant: '',
          userId,
          limit: 10,
          filters: undefined,
          context: {},
          explain: false,
          sessionItemIds: [],
        });
        const shown = r.items.map((i) => i.itemId);
        for (const [k, re] of traffic.react(userId, shown).entries()) {
          outcomes++;
          const event = {
            event_id: `demo-exp-${r.requestId}-${k}`,
            type: re.type,
            user_id: userId,
            item_id: re.itemId,
            quantity: re.quantity || 1,
            ...(re.type === 'click' ? {} : { price: re.price }),
            // The simulated delays, compressed to seconds.
            occurred_at: new Date(Date.now() + Math.round(re.delayMs / 60)).toISOString(),
            request_id: r.requestId,
            position: re.position,
          };
          await opts.js.publish(Subjects.clickstream(re.type), new TextEncoder().encode(JSON.stringify(event)));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    out(
      `   ${served} simulated shoppers' Recommend calls (${((performance.now() - t1) / 1000).toFixed(0)} s), ${outcomes} clicks, add-to-carts and purchases published with their request_id`,
    );
    let seen = '';
    const result = await eventually(
      async () => {
        const { result } = await experiments.getResults({ tenant: '', id });
        const counted = result?.arms.reduce((n, a) => n + a.clicks + a.addToCarts + a.purchases, 0) ?? 0;
        seen = `${result?.interleaving?.requests ?? 0} interleaved requests and ${counted} outcomes joined`;
        return result && (result.interleaving?.requests ?? 0) >= served && counted > 0 && counted >= outcomes * 0.95
          ? result
          : undefined;
      },
      { what: 'the experiment service joining impressions and outcomes', timeoutMs: 300_000, intervalMs: 1000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)} (it had ${seen} of ${served} and ${outcomes})`, { cause: err });
    });
    out(`\n   Experiment '${id}' (GetResults, also published on ${Subjects.experimentResult}):`);
    printResult(out, result);
    out(`   promote the candidate with ExperimentService.Promote({id: "${id}", arm: "candidate"}) once it wins`);
  } finally {
    ranking.close();
    experiments.close();
  }
}
