/**
 * `pnpm bench ingest`: end-to-end ingest throughput (publish -> validated -> stored -> republished)
 * against the bare JetStream publish + consume ceiling, measured in the same run on the same server.
 */
import { Streams } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { ensureStreams, jetStreamOf } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import { eventToProducerJson, repoRoot, startNatsServer, startServiceProcess, tempSqliteUrl } from '@aisle/testkit';
import { headers, connect } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { median, report } from './report';

const N = Number(process.env['BENCH_EVENTS'] ?? 50_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const WINDOW = 1000;

const shop = generateShop({ seed: 1, users: Math.ceil(N / 100), items: 500 });
const payloads = shop.events.slice(0, N).map((e) => ({
  subject: `aisle.clickstream.v1.${e.type}`,
  data: new TextEncoder().encode(JSON.stringify(eventToProducerJson(e))),
}));
if (payloads.length < N) throw new Error(`generated only ${payloads.length} events`);

async function publishAll(url: string, subjectOf: (s: string) => string): Promise<void> {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const { js } = await jetStreamOf(nc);
  let i = 0;
  const h = headers();
  h.set('Content-Type', 'application/json');
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (i < payloads.length) {
        const p = payloads[i++]!;
        await js.publish(subjectOf(p.subject), p.data, { headers: h });
      }
    }),
  );
  await nc.close();
}

async function ceilingRound(): Promise<number> {
  const nats = await startNatsServer();
  try {
    const nc = await connect({ servers: nats.url });
    const { jsm } = await jetStreamOf(nc);
    await ensureStreams(jsm, [{ ...Streams.CLICKSTREAM, name: 'CEILING', subjects: ['ceiling.>'] }]);
    await nc.close();
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'test', 'dist', 'bench', 'jetstream-consumer.js'), nats.url, 'CEILING', String(N)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    const waitFor = async (word: string) => {
      while (!out.includes(word)) await new Promise((r) => setTimeout(r, 2));
    };
    await waitFor('ready');
    const start = performance.now();
    await Promise.all([publishAll(nats.url, (s) => s.replace('aisle.clickstream.v1', 'ceiling')), waitFor('done')]);
    return N / ((performance.now() - start) / 1000);
  } finally {
    await nats.dispose();
  }
}

async function aisleRound(): Promise<number> {
  const nats = await startNatsServer();
  const storeFile = tempSqliteUrl();
  const ingest = await startServiceProcess('ingest', { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url });
  const store = await openStore(storeFile.url, STORE_PORTS);
  const nc = await connect({ servers: nats.url });
  const { jsm } = await jetStreamOf(nc);
  try {
    const start = performance.now();
    await publishAll(nats.url, (s) => s);
    for (;;) {
      const republished = (await jsm.streams.info(Streams.EVENTS.name)).state.messages;
      if (republished >= N && (await store.events.count()) >= N) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return N / ((performance.now() - start) / 1000);
  } finally {
    await nc.close();
    await store.close();
    await ingest.stop();
    await nats.dispose();
    storeFile.dispose();
  }
}

async function main(): Promise<void> {
  const ceiling: number[] = [];
  const aisle: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    ceiling.push(await ceilingRound());
    aisle.push(await aisleRound());
    process.stdout.write(
      `round ${r + 1}: ceiling ${ceiling[r]!.toFixed(0)} msg/s, ingest ${aisle[r]!.toFixed(0)} events/s\n`,
    );
  }
  const c = median(ceiling);
  const a = median(aisle);
  report(
    'ingest',
    [
      {
        what: 'JetStream publish + consume (ceiling)',
        'msgs/s (median)': Math.round(c),
        rounds: ceiling.map((x) => Math.round(x)).join(' '),
      },
      {
        what: 'ingest: publish -> stored -> republished',
        'msgs/s (median)': Math.round(a),
        rounds: aisle.map((x) => Math.round(x)).join(' '),
      },
      {
        what: 'ratio (goal >= 0.5)',
        'msgs/s (median)': a / c,
        rounds: aisle.map((x, i) => (x / ceiling[i]!).toFixed(2)).join(' '),
      },
    ],
    { events: N, window: WINDOW, store: 'sqlite', ratio: a / c },
  );
}

void main().catch((err: unknown) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
  process.exit(1);
});
