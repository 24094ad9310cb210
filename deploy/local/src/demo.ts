/**
 * `npm run demo`: the whole platform on the embedded store. Starts nats-server and every service as a
 * separate process, replays a generated shop through NATS like a producer would, runs the trainer job,
 * waits for the services to hot-load the models, then shows recommendations with reasons, a search and
 * the users most at risk of churning; trains a second ranker into an interleaving experiment against
 * the active one and reports it; and forgets one shopper everywhere. `--once` exits when done; otherwise the stack runs until Ctrl-C.
 */
import { churnV1, featureV1, Headers, ingestV1, privacyV1, rankingV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { createGrpcClient } from '@aisle/runtime';
import { eventually, launchBrowser, publishShop, repoRoot, runJobProcess, screenshotPages } from '@aisle/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { consoleTour } from './console-tour';
import { runExperimentDemo } from './demo-experiment';
import { startLocalStack } from './stack';

const once = process.argv.includes('--once');
const out = (s = '') => process.stdout.write(s + '\n');
const DAY = 86_400_000;
const lateClose: Array<() => Promise<void>> = [];

async function main(): Promise<void> {
  const dataDir = join(repoRoot, '.aisle', 'demo');
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const storeUrl = `sqlite:${join(dataDir, 'aisle.db')}`;

  out('Aisle local stack (embedded store), every service a separate process');
  const stack = await startLocalStack({ storeUrl, detached: true });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      out('\nStopping: services first (each drains NATS and closes the store), then nats-server.');
      await stack.stop();
      out('Stopped.');
    })());
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
  const s = stack.services;
  out(`  nats-server          ${stack.nats.url} (JetStream)`);
  out(`  store                ${storeUrl}`);
  for (const [name, p] of Object.entries(s))
    out(`  ${name.padEnd(20)} gRPC 127.0.0.1:${p.grpcPort}   metrics http://127.0.0.1:${p.metricsPort}/metrics`);
  out(
    `  console              ${stack.consoleUrl}   (open it in a browser: live overview, dead letters, shoppers, search, models, experiments)`,
  );

  const shop = generateShop({ seed: 2026, users: 400, items: 300, days: 60 });
  const cut = shop.end - 3 * DAY;
  const events = shop.events.filter((e) => e.occurredAt < cut);
  out(
    `\n1. A producer publishes a generated shop over NATS: ${shop.items.length} catalog items, ${events.length.toLocaleString()} clickstream events of ${shop.users.length} users over 57 days`,
  );
  const nc = await connect({ servers: stack.nats.url, noAsyncTraces: true });
  const js = jetstream(nc);
  lateClose.push(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const t0 = performance.now();
  await publishShop(js, shop.items, events);
  // A producer bug, to show the dead-letter stream at work.
  await js.publish(
    Subjects.clickstream('view'),
    new TextEncoder().encode(
      JSON.stringify({ event_id: 'demo-bad-1', type: 'view', item_id: 'i001', occurred_at: new Date().toISOString() }),
    ),
  );
  await eventually(
    async () => {
      const c = await jsm.consumers.info(Streams.EVENTS.name, 'feature');
      const ev = await jsm.streams.info(Streams.EVENTS.name);
      const dlq = await jsm.streams.info(Streams.DLQ.name);
      return (
        ev.state.messages >= events.length &&
        (await jsm.streams.info(Streams.ITEMS.name)).state.messages >= shop.items.length &&
        dlq.state.messages >= 1 &&
        c.num_pending === 0 &&
        c.num_ack_pending === 0
      );
    },
    { what: 'ingest and features', timeoutMs: 300_000, intervalMs: 200 },
  );
  const secs = (performance.now() - t0) / 1000;
  const dead = await jsm.streams.getMessage(Streams.DLQ.name, { last_by_subj: Subjects.dlq('clickstream') });
  out(
    `   ingested, stored and turned into features in ${secs.toFixed(1)} s (${Math.round(events.length / secs).toLocaleString()} events/s end to end)`,
  );
  out(`   dead-lettered 1 message: "${dead?.header.get(Headers.rejectReason) ?? ''}"`);

  out(
    '\n2. The trainer job trains SASRec, the text encoder, the ranker, the churn and the session models, compares them on a held-out slice and publishes them',
  );
  const t1 = performance.now();
  const trainer = await runJobProcess(
    'trainer',
    // The generated shop's planted signal is item-to-item, which co-visitation captures best: in
    // production a sequence model that does not beat it is not published; the demo shows them serving.
    { ...stack.env(), AISLE_TRAINER_SASREC_EPOCHS: '10', AISLE_TRAINER_BEAT_BASELINE: 'false' },
    { timeoutMs: 1_800_000 },
  );
  if (trainer.code !== 0) throw new Error(`trainer failed (${trainer.code}): ${trainer.stderr}`);
  for (const l of trainer.logs.filter((x) => x['msg'] === 'model published'))
    out(
      `   published ${String(l['model']).padEnd(13)} ${String(l['metric'])} on the held-out slice: ${Number(l['candidate']).toFixed(3)}`,
    );
  out(
    `   (${((performance.now() - t1) / 1000).toFixed(0)} s, backend ${String(trainer.logs.find((l) => l['msg'] === 'training backend')?.['backend'])})`,
  );
  await stack.modelsLoaded();
  out('   services hot-loaded the new versions');

  const ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${s.ranking.grpcPort}`, {
    deadlineMs: 5000,
  });
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${s.feature.grpcPort}`, {
    deadlineMs: 5000,
  });
  const churn = createGrpcClient(churnV1.ChurnServiceService, `127.0.0.1:${s.churn.grpcPort}`, { deadlineMs: 10_000 });
  const titles = new Map(shop.items.map((i) => [i.itemId, i]));
  const user = shop.users[3]!.userId;
  const { users } = await features.getUserFeatures({ tenant: '', userIds: [user], recentLimit: 3 });
  out(
    `\n3. Recommend for ${user} (recently: ${users[0]?.recent.map((r) => `"${titles.get(r.itemId)?.title}"`).join(', ')}):`,
  );
  const rec = await ranking.recommend({
    tenant: '',
    userId: user,
    limit: 6,
    filters: undefined,
    context: {},
    explain: false,
    sessionItemIds: [],
  });
  for (const it of rec.items)
    out(
      `   ${it.score.toFixed(3).padStart(7)}  ${(titles.get(it.itemId)?.title ?? it.itemId).padEnd(40)} ${it.reasons.join('; ')}`,
    );
  out(`   model ${rec.modelVersion}; degraded ${rec.degraded}; request_id ${rec.requestId}`);

  const query = 'lavender serum';
  out(`\n4. Search "${query}":`);
  const found = await ranking.search({ tenant: '', query, userId: user, limit: 5, filters: undefined, explain: false });
  for (const it of found.items)
    out(
      `   ${it.score.toFixed(3).padStart(7)}  ${(titles.get(it.itemId)?.title ?? it.itemId).padEnd(40)} ${it.reasons.join('; ')}`,
    );

  out('\n5. Users most at risk of churning (ChurnService.ListAtRisk):');
  await eventually(
    async () => (await churn.listAtRisk({ tenant: '', minRisk: 0, pageSize: 1, pageToken: '' })).scores.length > 0,
    { what: 'churn scores', timeoutMs: 60_000 },
  );
  const atRisk = await churn.listAtRisk({ tenant: '', minRisk: 0, pageSize: 5, pageToken: '' });
  const truth = new Map(shop.users.map((u) => [u.userId, u.churner]));
  for (const sc of atRisk.scores) {
    out(
      `   ${sc.userId}  risk ${sc.risk.toFixed(2)}  ${sc.topFactors.map((f) => `${f.feature}=${f.value}`).join(', ')}${truth.get(sc.userId) ? '   (the generator made this user drift away)' : ''}`,
    );
  }
  const alerts = (await jsm.streams.info(Streams.CHURN.name)).state.messages;
  out(`   ${alerts} churn alert(s) published on ${Subjects.churnAlert}`);

  out('\n6. An online experiment: a second ranker version against the active one, by team-draft interleaving');
  await runExperimentDemo({
    out,
    shop,
    env: stack.env(),
    rankingAddr: `127.0.0.1:${s.ranking.grpcPort}`,
    experimentAddr: `127.0.0.1:${s.experiment.grpcPort}`,
    js,
    requests: 1500,
  });

  // The right to be forgotten: one call, every owner of user data erases the shopper and says so.
  const shopper = shop.users[7]!.userId;
  out(`\n7. Forget shopper ${shopper} (IngestService.ForgetUser; GDPR Art. 17):`);
  const ingest = createGrpcClient(ingestV1.IngestServiceService, `127.0.0.1:${s.ingest.grpcPort}`, {
    deadlineMs: 5000,
  });
  const forgotten: privacyV1.UserForgotten[] = [];
  const sub = nc.subscribe(Subjects.privacyForgotten, {
    callback: (_err, m) => {
      forgotten.push(privacyV1.UserForgotten.decode(m.data));
    },
  });
  const t2 = performance.now();
  const { requestId } = await ingest.forgetUser({ tenant: '', userId: shopper });
  const owners = ['ingest', 'feature', 'churn-prediction', 'ranking'];
  await eventually(() => owners.every((o) => forgotten.some((f) => f.owner === o && f.requestId === requestId)), {
    what: 'every owner forgotten',
    timeoutMs: 30_000,
  });
  sub.unsubscribe();
  for (const f of forgotten.filter((x) => x.requestId === requestId))
    out(`   ${f.owner.padEnd(17)} erased ${f.records} record(s)`);
  const after = await features.getUserFeatures({ tenant: '', userIds: [shopper], recentLimit: 1 });
  out(
    `   done in ${(performance.now() - t2).toFixed(0)} ms; the shopper is now ${after.users[0]?.known ? 'still known (!)' : 'unknown to feature'}`,
  );
  ingest.close();
  ranking.close();
  features.close();
  churn.close();
  for (const close of lateClose) await close();

  out(`\n8. The console: ${stack.consoleUrl}`);
  if (once) {
    const dir = join(dataDir, 'screenshots');
    const browser = await launchBrowser();
    try {
      const files = await screenshotPages(browser, stack.consoleUrl, consoleTour({ user, query }), dir);
      out('   screenshots of every page (1280 px and phone width):');
      for (const f of files) out(`   ${f}`);
    } finally {
      await browser.close();
    }
    await stop();
    process.exit(0);
  }
  out(`\nThe stack is running. Try, with grpcurl (server reflection is on):`);
  out(`  grpcurl -plaintext 127.0.0.1:${s.ranking.grpcPort} list`);
  out(
    `  grpcurl -plaintext -d '{"user_id":"${user}","limit":5}' 127.0.0.1:${s.ranking.grpcPort} aisle.ranking.v1.RankingService/Recommend`,
  );
  out(
    `  grpcurl -plaintext -d '{"query":"candle","limit":5}' 127.0.0.1:${s.ranking.grpcPort} aisle.ranking.v1.RankingService/Search`,
  );
  out(`  grpcurl -plaintext -d '{"page_size":5}' 127.0.0.1:${s.churn.grpcPort} aisle.churn.v1.ChurnService/ListAtRisk`);
  out(
    `  grpcurl -plaintext -d '{"id":"ranker-seed-2"}' 127.0.0.1:${s.experiment.grpcPort} aisle.experiment.v1.ExperimentService/GetResults`,
  );
  out('Press Ctrl-C to stop.');
  for (const p of Object.values(s)) {
    void p.exited.then((code) => {
      if (!stopping) {
        out(`${p.name} exited unexpectedly (${code}); stopping the stack.`);
        void stop().then(() => process.exit(1));
      }
    });
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
