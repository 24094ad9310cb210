import { Headers } from '@aisle/contracts';
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { ProducerMessage } from './traffic';

export async function connectTestBus(
  url: string,
): Promise<{ nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager }> {
  const nc = await connect({ servers: url });
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

/** Publishes producer messages to JetStream with at most `window` acks outstanding. */
export async function publishAll(
  js: JetStreamClient,
  messages: readonly ProducerMessage[],
  window = 500,
): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < messages.length) {
      const m = messages[i++] as ProducerMessage;
      const h = headers();
      h.set(Headers.contentType, m.contentType);
      await js.publish(m.subject, m.data, { headers: h, ...(m.msgId ? { msgID: m.msgId } : {}) });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
}

/** Every message of a stream, in order. */
export async function readStream(jsm: JetStreamManager, stream: string): Promise<StoredMsg[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m) out.push(m);
  }
  return out;
}

/** True once the durable consumer has delivered and acked everything in its stream. */
export async function consumerCaughtUp(jsm: JetStreamManager, stream: string, durable: string): Promise<boolean> {
  try {
    const c = await jsm.consumers.info(stream, durable);
    return c.num_pending === 0 && c.num_ack_pending === 0 && c.num_redelivered >= 0;
  } catch {
    return false;
  }
}
