/**
 * `npm run demo`: the local stack on the embedded store. Starts nats-server and the services as separate
 * processes, replays a generated shop through NATS like a producer would, and prints what came out.
 * `--once` exits when done; otherwise the stack runs until Ctrl-C and shuts down cleanly.
 */
import { ContentTypes, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { createGrpcClient } from '@aisle/runtime';
import { eventToProducerJson, itemToProducerJson, repoRoot, startNatsServer, startServiceProcess, type ServiceProcess } from '@aisle/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const once = process.argv.includes('--once');
const out = (s = '') => process.stdout.write(s + '\n');

async function main(): Promise<void> {
  const dataDir = join(repoRoot, '.aisle', 'demo');
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const storeUrl = `sqlite:${join(dataDir, 'aisle.db')}`;

  out('Aisle local stack (embedded store)');
  const nats = await startNatsServer({ detached: true });
  const started: ServiceProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      out('\nStopping: services first (they drain NATS and close the store), then nats-server.');
      await Promise.all(started.map((s) => s.stop()));
      await nats.dispose();
      out('Stopped.');
    })());
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));

  out(`  nats-server   ${nats.url} (JetStream)`);
  out(`  store         ${storeUrl}`);
  const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeUrl };
  for (const name of ['ingest', 'feature']) {
    const p = await startServiceProcess(name, env, { detached: true });
    started.push(p);
    out(`  ${name.padEnd(13)} gRPC 127.0.0.1:${p.grpcPort}   metrics http://127.0.0.1:${p.metricsPort}/metrics`);
  }
  const [ingest, feature] = started as [ServiceProcess, ServiceProcess];

  const shop = generateShop({ seed: 2026, users: 300, items: 400, days: 60 });
  out(`\nReplaying a generated shop through NATS: ${shop.items.length} catalog items, ${shop.events.length.toLocaleString()} clickstream events, ${shop.users.length} users over 60 days`);
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  // nats.js writes Nats-Msg-Id into the headers object it is given: one object per message.
  const json = () => {
    const h = headers();
    h.set(Headers.contentType, ContentTypes.json);
    return h;
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const t0 = performance.now();
  await Promise.all(shop.items.map((i) => js.publish(Subjects.catalogUpsert, enc(itemToProducerJson(i)), { headers: json() })));
  let next = 0;
  await Promise.all(
    Array.from({ length: 500 }, async () => {
      while (next < shop.events.length) {
        const e = shop.events[next++]!;
        await js.publish(Subjects.clickstream(e.type), enc(eventToProducerJson(e)), { headers: json(), msgID: `default:${e.eventId}` });
      }
    }),
  );
  // A producer bug, to show the dead-letter stream at work.
  await js.publish(Subjects.clickstream('view'), enc({ event_id: 'demo-bad-1', type: 'view', item_id: 'i001', occurred_at: new Date().toISOString() }), { headers: json() });
  for (;;) {
    const c = await jsm.consumers.info(Streams.EVENTS.name, 'feature');
    const ev = await jsm.streams.info(Streams.EVENTS.name);
    const dlq = await jsm.streams.info(Streams.DLQ.name);
    if (ev.state.messages >= shop.events.length + shop.items.length && dlq.state.messages >= 1 && c.num_pending === 0 && c.num_ack_pending === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const secs = (performance.now() - t0) / 1000;
  out(`Ingested, stored and turned into features in ${secs.toFixed(1)} s (${Math.round(shop.events.length / secs).toLocaleString()} events/s end to end).`);
  const dead = await jsm.streams.getMessage(Streams.DLQ.name, { last_by_subj: Subjects.dlq('clickstream') });
  out(`Dead-lettered: ${(await jsm.streams.info(Streams.DLQ.name)).state.messages} message(s); last reason: "${dead?.header.get(Headers.rejectReason) ?? ''}"`);
  await nc.close();

  const client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, { deadlineMs: 5000 });
  const sample = shop.users.slice(0, 6).map((u) => u.userId);
  const { users } = await client.getUserFeatures({ tenant: '', userIds: sample, recentLimit: 3 });
  out('\nSample of user features (FeatureService.GetUserFeatures):');
  out(`  ${'user'.padEnd(7)}${'events'.padStart(7)}${'sessions'.padStart(9)}${'purchases'.padStart(10)}${'spend'.padStart(9)}  ${'top category'.padEnd(30)}recent items`);
  for (const u of users) {
    const c = u.counts;
    const total = c ? c.view + c.click + c.addToCart + c.removeFromCart + c.purchase + c.search : 0;
    const top = u.categoryAffinity.find((a) => a.category.includes(' > '))?.category ?? '-';
    out(`  ${u.userId.padEnd(7)}${String(total).padStart(7)}${String(u.sessions).padStart(9)}${String(u.purchases).padStart(10)}${u.spend.toFixed(2).padStart(9)}  ${top.padEnd(30)}${u.recent.map((r) => `${r.itemId}(${r.type})`).join(' ')}`);
  }
  const firstItem = users[0]?.recent[0]?.itemId ?? shop.items[0]!.itemId;
  const { items } = await client.getItemFeatures({ tenant: '', itemIds: [firstItem], coVisitLimit: 3 });
  const it = items[0];
  if (it) out(`\nItem ${it.itemId} "${it.title}": ${it.views} views, CTR ${it.ctr.toFixed(3)}, 7-day popularity ${it.popularity7d.toFixed(1)}, co-visited with ${it.coVisited.map((c) => `${c.itemId}(${c.score})`).join(', ')}`);
  client.close();

  if (once) {
    await stop();
    return;
  }
  out(`\nThe stack is running. Try, with grpcurl (server reflection is on):`);
  out(`  grpcurl -plaintext 127.0.0.1:${feature.grpcPort} list`);
  out(`  grpcurl -plaintext -d '{"user_ids":["${sample[0]}"]}' 127.0.0.1:${feature.grpcPort} aisle.feature.v1.FeatureService/GetUserFeatures`);
  out(`  grpcurl -plaintext -d '{"events":[{"event_id":"e1","type":"view","user_id":"u1","item_id":"i001","occurred_at":"${new Date().toISOString()}"}]}' 127.0.0.1:${ingest.grpcPort} aisle.ingest.v1.IngestService/Track`);
  out('Press Ctrl-C to stop.');
  for (const s of started) {
    void s.exited.then((code) => {
      if (!stopping) {
        out(`${s.name} exited unexpectedly (${code}); stopping the stack.`);
        void stop().then(() => process.exit(1));
      }
    });
  }
}

void main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
