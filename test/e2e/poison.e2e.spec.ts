/**
 * Issue #18, item 1: one malformed message must not jam a consumer. Every poison payload of the security
 * review is published into a running stack (ingest, feature, churn-prediction, ranking and
 * embedding-inference, in this process), more of them than ingest may hold unacknowledged, and valid
 * events published after them must still reach the store and the features; every consumer ends caught
 * up, and each poison message sits in the DLQ with its reason.
 */
import { ContentTypes, decodeItem, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import { createGrpcClient, startServiceInProcess, type InProcessService } from '@aisle/runtime';
import { openStore, STORE_PORTS } from '@aisle/store';
import { eventually, startNatsServer, tempSqliteUrl, type NatsServerHandle } from '@aisle/testkit';
import { headers } from '@nats-io/transport-node';
import { startChurn } from '../../services/churn-prediction/src/app';
import { loadChurnConfig } from '../../services/churn-prediction/src/config';
import { startEmbedding } from '../../services/embedding-inference/src/app';
import { loadEmbeddingConfig } from '../../services/embedding-inference/src/config';
import { startFeature } from '../../services/feature/src/app';
import { loadFeatureConfig } from '../../services/feature/src/config';
import { startIngest } from '../../services/ingest/src/app';
import { loadIngestConfig } from '../../services/ingest/src/config';
import { startRanking } from '../../services/ranking/src/app';
import { loadRankingConfig } from '../../services/ranking/src/config';
import { connectTestBus, consumerCaughtUp, readStream } from '../support/bus';

jest.setTimeout(120_000);

const enc = (s: string) => new TextEncoder().encode(s);
const json = (o: unknown) => enc(JSON.stringify(o));
/** A length-delimited field claiming 127 bytes that are not there: every protobuf decoder throws. */
const GARBAGE_PROTO = new Uint8Array([0x0a, 0x7f, 0x01]);

interface Poison {
  what: string;
  subject: string;
  data: Uint8Array;
  contentType?: string;
  /** The DLQ subject it must end up on. */
  dlq: string;
  /** Substring of the reason. */
  reason: string;
}

const poisons: Poison[] = [
  {
    what: 'not JSON, with CR/LF that Node quotes in its error text',
    subject: 'aisle.clickstream.v1.view',
    data: enc('x\r\nnot json'),
    dlq: Subjects.dlq('clickstream'),
    reason: 'payload: invalid JSON',
  },
  {
    what: 'a field name that is a newline',
    subject: 'aisle.clickstream.v1.view',
    data: enc('{"\\n":1}'),
    dlq: Subjects.dlq('clickstream'),
    reason: 'unknown field',
  },
  {
    what: 'a context key with CR/LF and an oversized value',
    subject: 'aisle.clickstream.v1.view',
    data: json({
      event_id: 'p-ctx',
      user_id: 'u',
      item_id: 'i',
      occurred_at: new Date().toISOString(),
      context: { 'k\r\nX-Injected: 1': 'v'.repeat(300) },
    }),
    dlq: Subjects.dlq('clickstream'),
    reason: 'context.',
  },
  {
    what: 'garbage protobuf on the clickstream',
    subject: 'aisle.clickstream.v1.click',
    data: GARBAGE_PROTO,
    contentType: ContentTypes.protobuf,
    dlq: Subjects.dlq('clickstream'),
    reason: 'invalid protobuf',
  },
  {
    what: 'an attributes key with CR/LF on the catalog',
    subject: Subjects.catalogUpsert,
    data: json({ item_id: 'p-attr', title: 't', attributes: { '\r\n': 'v'.repeat(300) } }),
    dlq: Subjects.dlq('catalog'),
    reason: 'attributes.',
  },
  {
    what: 'garbage protobuf on the catalog',
    subject: Subjects.catalogUpsert,
    data: GARBAGE_PROTO,
    contentType: ContentTypes.protobuf,
    dlq: Subjects.dlq('catalog'),
    reason: 'invalid protobuf',
  },
  {
    what: 'garbage on the normalized event subjects (a bus client skipping ingest)',
    subject: 'aisle.events.v1.view',
    data: GARBAGE_PROTO,
    dlq: Subjects.dlq('events'),
    reason: 'payload: not a valid normalized event',
  },
  {
    what: 'garbage on the feature notifications churn-prediction consumes',
    subject: Subjects.userFeaturesUpdated,
    data: GARBAGE_PROTO,
    dlq: Subjects.dlq('features'),
    reason: 'payload: not a valid UserFeaturesUpdated',
  },
];

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
const services: InProcessService[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  const env = {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_GRPC_HOST: '127.0.0.1',
    AISLE_GRPC_PORT: '0',
    AISLE_METRICS_PORT: '-1',
    AISLE_LOG_LEVEL: 'error',
    // Fewer unacknowledged messages than there are poison messages: one stuck message per slot would stop ingest.
    AISLE_INGEST_MAX_IN_FLIGHT: '20',
    // The crafted event below names tenant `item`: declared, so that it is stored rather than refused.
    AISLE_TENANTS: 'default,item',
    AISLE_INGEST_BATCH_SIZE: '10',
  };
  const start = async <C>(
    name: string,
    config: C,
    fn: (b: Parameters<typeof startIngest>[0], c: C) => ReturnType<typeof startIngest>,
  ) => {
    const s = await startServiceInProcess(name, config as never, fn as never);
    services.push(s);
    return s;
  };
  await start('ingest', loadIngestConfig(env), startIngest);
  const feature = await start('feature', loadFeatureConfig(env), startFeature);
  const featureAddr = `127.0.0.1:${feature.grpcPort}`;
  await start('churn-prediction', loadChurnConfig({ ...env, AISLE_FEATURE_ADDR: featureAddr }), startChurn);
  const embedding = await start('embedding-inference', loadEmbeddingConfig(env), startEmbedding);
  await start(
    'ranking',
    loadRankingConfig({
      ...env,
      AISLE_FEATURE_ADDR: featureAddr,
      AISLE_EMBEDDING_ADDR: `127.0.0.1:${embedding.grpcPort}`,
    }),
    startRanking,
  );
});

afterAll(async () => {
  for (const s of services.reverse()) await s.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

test('every poison payload is dead-lettered with its reason while valid events keep flowing', async () => {
  const bus = await connectTestBus(nats.url);
  const store = await openStore(storeFile.url, STORE_PORTS);
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${services[1]!.grpcPort}`, {
    deadlineMs: 5000,
  });
  try {
    // Each poison payload 8 times, so that the 3 kinds that once broke the DLQ header alone (24 messages)
    // outnumber what ingest may hold unacknowledged (20).
    const copies = 8;
    for (let c = 0; c < copies; c++)
      for (const p of poisons) {
        const h = headers();
        if (p.contentType) h.set(Headers.contentType, p.contentType);
        await bus.js.publish(p.subject, p.data, { headers: h });
      }
    const now = Date.now();
    const valid = Array.from({ length: 30 }, (_, i) => ({
      event_id: `ok-${i}`,
      user_id: `user-${i % 3}`,
      item_id: 'sku-1',
      occurred_at: new Date(now - (30 - i) * 1000).toISOString(),
    }));
    for (const e of valid) await bus.js.publish('aisle.clickstream.v1.view', json(e));
    await bus.js.publish(Subjects.catalogUpsert, json({ item_id: 'sku-1', title: 'A valid item' }));

    await eventually(async () => (await store.events.count()) === valid.length, {
      what: 'every valid event stored',
      timeoutMs: 60_000,
    });
    await eventually(
      async () => {
        const { users } = await features.getUserFeatures({
          tenant: '',
          userIds: ['user-0', 'user-1', 'user-2'],
          recentLimit: 0,
        });
        return users.reduce((n, u) => n + (u.counts?.view ?? 0), 0) === valid.length;
      },
      { what: 'features of every valid event', timeoutMs: 60_000 },
    );
    const dlqCount = async () => (await bus.jsm.streams.info(Streams.DLQ.name)).state.messages;
    await eventually(async () => (await dlqCount()) === poisons.length * copies, {
      what: 'every poison message in the DLQ',
      timeoutMs: 60_000,
    });
    const consumers: string[] = [];
    for (const stream of [Streams.CLICKSTREAM, Streams.CATALOG, Streams.EVENTS, Streams.FEATURES])
      for await (const c of bus.jsm.consumers.list(stream.name)) consumers.push(`${stream.name}/${c.name}`);
    expect(consumers).toEqual(
      expect.arrayContaining([
        'CLICKSTREAM/ingest-clickstream',
        'CATALOG/ingest-catalog',
        'EVENTS/feature',
        'FEATURES/churn',
      ]),
    );
    await eventually(
      async () => {
        for (const c of consumers) {
          const [stream, durable] = c.split('/') as [string, string];
          if (!(await consumerCaughtUp(bus.jsm, stream, durable))) return false;
        }
        return true;
      },
      { what: 'every consumer caught up', timeoutMs: 30_000 },
    );

    const dead = await readStream(bus.jsm, Streams.DLQ.name);
    for (const p of poisons) {
      const mine = dead.filter(
        (d) => d.header.get(Headers.originalSubject) === p.subject && Buffer.from(d.data).equals(Buffer.from(p.data)),
      );
      expect({ what: p.what, count: mine.length }).toEqual({ what: p.what, count: copies });
      for (const d of mine) {
        expect(d.subject).toBe(p.dlq);
        expect(d.header.get(Headers.rejectReason)).toContain(p.reason);
      }
    }
    // The catalog garbage did not stop ingest: the valid item after it is on the accepted catalog.
    const item = decodeItem(
      (await bus.jsm.streams.getMessage(Streams.ITEMS.name, { last_by_subj: Subjects.item('default', 'sku-1') }))!.data,
    );
    expect(item).toMatchObject({ itemId: 'sku-1', title: 'A valid item' });
  } finally {
    features.close();
    await store.close();
    await bus.nc.close();
  }
});

test('an event id crafted like a catalog message id does not suppress the catalog update', async () => {
  const bus = await connectTestBus(nats.url);
  const store = await openStore(storeFile.url, STORE_PORTS);
  try {
    const updatedAt = new Date(Date.now() - 60_000);
    // Under tenant `item`, event id `default:sku-2:<ms>` once made the same EVENTS message id as this update.
    await bus.js.publish(
      'aisle.clickstream.v1.view',
      json({
        tenant: 'item',
        event_id: `default:sku-2:${updatedAt.getTime()}`,
        user_id: 'mallory',
        item_id: 'sku-2',
        occurred_at: new Date().toISOString(),
      }),
    );
    await eventually(async () => (await store.events.count({ tenant: 'item' })) === 1, {
      what: 'crafted event stored',
    });
    await bus.js.publish(
      Subjects.catalogUpsert,
      json({ item_id: 'sku-2', title: 'Second item', updated_at: updatedAt.toISOString() }),
    );
    await eventually(
      async () => {
        const m = await bus.jsm.streams
          .getMessage(Streams.ITEMS.name, { last_by_subj: Subjects.item('default', 'sku-2') })
          .catch(() => null);
        return m !== null && decodeItem(m.data).itemId === 'sku-2';
      },
      { what: 'the catalog update published on ITEMS' },
    );
  } finally {
    await store.close();
    await bus.nc.close();
  }
});
