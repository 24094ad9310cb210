/** Ceiling helper: a bare durable pull consumer that acks `n` messages, then prints "done". */
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

async function main(): Promise<void> {
  const [url = '', stream = '', nArg = '0'] = process.argv.slice(2);
  const n = Number(nArg);
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(stream, { durable_name: 'ceiling', ack_policy: AckPolicy.Explicit, max_ack_pending: 4000 });
  const consumer = await jetstream(nc).consumers.get(stream, 'ceiling');
  process.stdout.write('ready\n');
  const messages = await consumer.consume({ max_messages: 1000 });
  let seen = 0;
  for await (const m of messages) {
    m.ack();
    if (++seen >= n) break;
  }
  await nc.flush();
  process.stdout.write('done\n');
  await nc.close();
}

void main();
