/**
 * Pruning after a publication keeps what experiments pin: a version an arm of a running (or stopped, not
 * promoted) experiment pins survives however old it is; a promoted experiment's pins no longer hold
 * anything back. Real nats-server, model registry and experiment bucket.
 */
import { experimentV1, rankingV1, Streams } from '@aisle/contracts';
import { normalizeExperiment, promotedReason } from '@aisle/experiments';
import { AsyncJetStreamPublisher, createLogger, ensureStreams, ExperimentBucket, ModelRegistry } from '@aisle/runtime';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pruneVersions } from '../src/prune.nats';

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  await ensureStreams(await jetstreamManager(nc), [Streams.MODELS]);
});

afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

const define = (id: string, version: string) =>
  normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      tenant: 'shop',
      id,
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design: experimentV1.Design.DESIGN_INTERLEAVING,
      arms: [{ name: 'active' }, { name: 'candidate', models: { ranker: version } }],
    }),
    Date.now(),
  );

test('versions pinned by experiments not promoted survive pruning; the rest beyond the newest N go', async () => {
  const registry = await ModelRegistry.open(nc);
  const publisher = new AsyncJetStreamPublisher(nc);
  const version = (v: string) => ({
    tenant: 'shop',
    name: 'ranker' as const,
    version: v,
    onnx: new TextEncoder().encode(`ranker ${v}`),
    sidecar: {},
    meta: {},
  });
  for (const v of ['v1', 'v2', 'v3', 'v4']) await registry.storeVersion(version(v));
  const bucket = await ExperimentBucket.open(nc);
  await bucket.create(define('running', 'v1'));
  const stopped = define('stopped', 'v2');
  await bucket.create({ ...stopped, stopTime: new Date(), stopReason: 'stopped by hand' });
  const promoted = define('promoted', 'v3');
  await bucket.create({ ...promoted, stopTime: new Date(), stopReason: promotedReason('candidate') });
  await registry.publish(publisher, version('v5'));

  const logger = createLogger({ service: 'trainer-test', level: 'warn' });
  const deleted = await pruneVersions(registry, bucket, { tenant: 'shop', model: 'ranker', keep: 1, logger });
  expect(deleted.filter((o) => o.endsWith('.onnx')).sort()).toEqual(['shop/ranker/v3.onnx', 'shop/ranker/v4.onnx']);
  const left = (await registry.versions('shop', 'ranker')).map((m) => m.version).sort();
  expect(left).toEqual(['v1', 'v2', 'v5']);
  // What is kept still loads: its metadata and sidecar were kept with it.
  const v1 = await registry.versionMeta('shop', 'ranker', 'v1');
  expect(new TextDecoder().decode((await registry.load(v1 as NonNullable<typeof v1>)).onnx)).toBe('ranker v1');
  publisher.close();
});
