/**
 * `pnpm seed`: the demo producer for a running Aisle, e.g. one on Kubernetes reached through
 * `kubectl port-forward svc/nats 4222`. Publishes a generated shop (catalog, then 60 days of clickstream
 * ending now) to the tenant's subjects `aisle.clickstream.v1.<type>.<tenant>` and
 * `aisle.catalog.v1.upsert.<tenant>` like any producer, waits for JetStream to acknowledge every message,
 * and prints a user to ask Recommend for.
 *   pnpm seed [--nats nats://127.0.0.1:4222] [--user producer --password ...] [--tenant default]
 *             [--users 400 --items 300]
 */
import { generateShop } from '@aisle/datagen';
import { publishShop } from '@aisle/testkit';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const DAY = 86_400_000;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

async function main(): Promise<void> {
  const servers = flag('nats', 'nats://127.0.0.1:4222');
  const user = flag('user', '');
  const days = 60;
  const shop = generateShop({
    seed: 2026,
    users: Number(flag('users', '400')),
    items: Number(flag('items', '300')),
    days,
    start: Date.now() - days * DAY,
  });
  const nc = await connect({
    servers,
    name: 'aisle-seed',
    noAsyncTraces: true,
    ...(user ? { user, pass: flag('password', '') } : {}),
  });
  try {
    const t0 = performance.now();
    await publishShop(jetstream(nc), shop.items, shop.events, { tenant: flag('tenant', 'default') });
    const secs = (performance.now() - t0) / 1000;
    const out = (s: string) => process.stdout.write(`${s}\n`);
    out(
      `published ${shop.items.length} catalog items and ${shop.events.length} events of ${shop.users.length} users to ${servers} in ${secs.toFixed(1)} s`,
    );
    out(`ask Recommend for user ${shop.users[3]!.userId}, e.g.`);
    out(
      `  grpcurl -plaintext -d '{"user_id":"${shop.users[3]!.userId}","limit":5,"explain":true}' localhost:50051 aisle.ranking.v1.RankingService/Recommend`,
    );
  } finally {
    await nc.close();
  }
}

void main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  // nats.js reports a publish nobody answers (no stream on the subject) as JetStream not enabled.
  const hint = /not enabled|no responders/i.test(message)
    ? ': no stream takes aisle.clickstream.v1.* yet; ingest creates the streams when it starts'
    : '';
  process.stderr.write(`seed failed: ${message}${hint}\n`);
  process.exit(1);
});
