/** embedding-inference as a process: model hot-loading, RPC contract, swaps without failed requests, provider fallback. */
import { embeddingV1, Streams } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { exportTextEncoder, fromEvents, initBackend, itemText, TextEncoder2T } from '@aisle/ml';
import {
  AsyncJetStreamPublisher,
  createGrpcClient,
  ensureStreams,
  grpc,
  isGrpcError,
  jetStreamOf,
  ModelRegistry,
} from '@aisle/runtime';
import {
  eventually,
  healthCheck,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
  acceptedItem,
  publishAcceptedCatalog,
} from '@aisle/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { publishTinySasrec } from './models.fixture';

jest.setTimeout(120_000);

const shop = generateShop({ seed: 9, users: 120, items: 80, days: 30 });
const sequences = fromEvents('shop', shop.events);
let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let nc: NatsConnection;
let registry: ModelRegistry;
let publisher: AsyncJetStreamPublisher;
let service: ServiceProcess;
let client: ReturnType<typeof createGrpcClient<typeof embeddingV1.EmbeddingServiceService>>;

async function publishModels(version: string, seed: number): Promise<void> {
  await publishTinySasrec(registry, publisher, sequences, version, seed);
  const text = new TextEncoder2T({ dim: 16, epochs: 1, seed, hasher: { buckets: 4096, maxIds: 48 } });
  await text.fit(shop.items.map((i) => [i.title.split(' ').slice(-2).join(' '), itemText(i)] as [string, string]));
  await registry.publish(publisher, {
    tenant: 'default',
    name: 'text_encoder',
    version,
    onnx: exportTextEncoder(text),
    sidecar: { hasher: text.cfg.hasher, dim: 16 },
    meta: {},
  });
  text.dispose();
}

beforeAll(async () => {
  await initBackend({});
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  nc = await connect({ servers: nats.url });
  await publishAcceptedCatalog(
    nc,
    shop.items.map((i) => acceptedItem(i)),
  );
  const { jsm } = await jetStreamOf(nc);
  await ensureStreams(jsm, [Streams.MODELS]);
  registry = await ModelRegistry.open(nc);
  publisher = new AsyncJetStreamPublisher(nc);
  service = await startServiceProcess('embedding-inference', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_ORT_PROVIDERS: 'cuda,cpu',
  });
  client = createGrpcClient(embeddingV1.EmbeddingServiceService, `127.0.0.1:${service.grpcPort}`, { deadlineMs: 5000 });
});

afterAll(async () => {
  client?.close();
  publisher?.close();
  await nc?.close();
  await service?.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

const codeOf = async (p: Promise<unknown>) => {
  const e: unknown = await p.catch((x: unknown) => x);
  return isGrpcError(e) ? [grpc.status[e.code], e.details] : ['OK'];
};

test('NOT_SERVING and FAILED_PRECONDITION until a model is published, then hot-loaded with a logged CPU fallback', async () => {
  const address = `127.0.0.1:${service.grpcPort}`;
  expect(await healthCheck(address)).toBe('SERVING');
  expect(await healthCheck(address, 'aisle.embedding.v1.EmbeddingService')).toBe('NOT_SERVING');
  expect(
    await codeOf(client.retrieve({ tenant: '', sequence: { itemIds: ['i001'] }, k: 5, excludeItemIds: [], index: 0 })),
  ).toEqual(['FAILED_PRECONDITION', 'no sequence model (sasrec) is active yet: run the trainer']);
  // Serving degraded, and saying so (the pod is Ready: its readiness probe asks for "").
  // One deployment serves every declared tenant: /status reports each tenant's models and index.
  const before = (await (await fetch(`http://127.0.0.1:${service.metricsPort}/status`)).json()) as {
    tenants: Record<string, { degraded?: string }>;
  };
  expect(before.tenants['default']?.degraded).toMatch(/^no model published yet/);
  expect(service.logs.find((l) => l['msg'] === 'ready')?.['degraded']).toMatch(/^no model published yet/);

  await publishModels('v1', 1);
  await eventually(async () => (await healthCheck(address, 'aisle.embedding.v1.EmbeddingService')) === 'SERVING', {
    what: 'models loaded',
  });
  type Status = {
    models: Array<{ model: string; provider: string; fallbackReason: string }>;
    textIndexSize: number;
    degraded?: string;
  };
  const status = await eventually(
    async () => {
      const all = (await (await fetch(`http://127.0.0.1:${service.metricsPort}/status`)).json()) as {
        tenants: Record<string, Status>;
      };
      const s = all.tenants['default'];
      return s && s.models.length === 2 && s.textIndexSize > 0 && s.degraded === undefined ? s : undefined;
    },
    { what: 'both models in /status' },
  );
  expect(status.models.map((m) => [m.model, m.provider])).toEqual(
    expect.arrayContaining([
      ['sasrec', 'cpu'],
      ['text_encoder', 'cpu'],
    ]),
  );
  expect(status.models[0]?.fallbackReason).toMatch(/^cuda: /);
  expect(status.textIndexSize).toBe(shop.items.length);
  expect(service.logs.some((l) => l['msg'] === 'execution provider fallback')).toBe(true);
  const metrics = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
  expect(metrics).toMatch(/aisle_embedding_execution_provider\{[^}]*provider="cpu"[^}]*\} 1/);
});

test('encode and retrieve, with exclusions and field-level errors', async () => {
  const history = Array.from(sequences.sequences[0]!.subarray(0, 5), (i) => sequences.itemIds[i]!);
  const enc = await client.encodeSequences({
    tenant: '',
    sequences: [{ itemIds: history }, { itemIds: ['unknown-item'] }],
  });
  expect(enc.embeddings.map((e) => e.values.length)).toEqual([16, 16]);
  expect(enc.modelVersion).toBe('v1');
  const r = await client.retrieve({
    tenant: '',
    sequence: { itemIds: history },
    k: 10,
    excludeItemIds: history,
    index: 0,
  });
  expect(r.items).toHaveLength(10);
  expect(r.items.some((n) => history.includes(n.itemId))).toBe(false);
  expect([...r.items.map((n) => n.score)]).toEqual([...r.items.map((n) => n.score)].sort((a, b) => b - a));
  const t = await client.retrieve({ tenant: '', text: shop.items[3]!.title, k: 5, excludeItemIds: [], index: 0 });
  expect(t.items).toHaveLength(5);
  const texts = await client.encodeTexts({
    tenant: '',
    texts: ['candle', 'wok'],
    tower: embeddingV1.TextTower.TEXT_TOWER_QUERY,
  });
  const v = await client.retrieve({
    tenant: '',
    vector: { values: texts.embeddings[0]!.values },
    k: 3,
    excludeItemIds: [],
    index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_TEXT,
  });
  expect(v.items).toHaveLength(3);
  expect(await codeOf(client.retrieve({ tenant: '', k: 3, excludeItemIds: [], index: 0 }))).toEqual([
    'INVALID_ARGUMENT',
    'query: one of sequence, text or vector is required',
  ]);
  expect(
    await codeOf(
      client.retrieve({ tenant: '', sequence: { itemIds: history }, k: 5000, excludeItemIds: [], index: 0 }),
    ),
  ).toEqual(['INVALID_ARGUMENT', 'k: must be between 1 and 1000']);
  expect(
    await codeOf(
      client.retrieve({
        tenant: '',
        vector: { values: [1, 2] },
        k: 3,
        excludeItemIds: [],
        index: embeddingV1.RetrievalIndex.RETRIEVAL_INDEX_SEQUENCE,
      }),
    ),
  ).toEqual(['INVALID_ARGUMENT', 'vector.values: must have 16 values for the sequence index, got 2']);
  expect(await codeOf(client.encodeTexts({ tenant: '', texts: [], tower: 0 }))).toEqual([
    'INVALID_ARGUMENT',
    'texts: at least one text required',
  ]);
  // Issue #18: a 1 MB text once blocked the event loop for a quarter of a second.
  expect(
    await codeOf(client.retrieve({ tenant: '', text: 'shoe '.repeat(200_000), k: 3, excludeItemIds: [], index: 0 })),
  ).toEqual(['INVALID_ARGUMENT', 'text: longer than 2000 characters']);
  expect(
    await codeOf(
      client.retrieve({
        tenant: '',
        sequence: { itemIds: Array.from({ length: 1001 }, () => 'i001') },
        k: 3,
        excludeItemIds: [],
        index: 0,
      }),
    ),
  ).toEqual(['INVALID_ARGUMENT', 'sequence.item_ids: more than 1000 items']);
  expect(
    await codeOf(client.retrieve({ tenant: 'no/such tenant', text: 'shoe', k: 3, excludeItemIds: [], index: 0 })),
  ).toEqual(['INVALID_ARGUMENT', 'tenant: must be 1-64 letters, digits, _ . - (starting with a letter or digit)']);
});

test('a new version swaps in under load without a single failed request', async () => {
  const history = Array.from(sequences.sequences[1]!.subarray(0, 4), (i) => sequences.itemIds[i]!);
  let stop = false;
  const versions = new Set<string>();
  let ok = 0;
  const failures: unknown[] = [];
  const load = Array.from({ length: 4 }, async () => {
    while (!stop) {
      try {
        const r = await client.retrieve({
          tenant: '',
          sequence: { itemIds: history },
          k: 5,
          excludeItemIds: [],
          index: 0,
        });
        versions.add(r.modelVersion);
        ok++;
      } catch (err) {
        failures.push(err);
      }
    }
  });
  // Load before, during and after the swap: the test means nothing if the swap happens between calls.
  await eventually(() => ok >= 20, { what: 'load running' });
  await publishModels('v2', 2);
  await eventually(() => versions.has('v2'), { what: 'v2 serving', timeoutMs: 60_000 });
  const atSwap = ok;
  await eventually(() => ok >= atSwap + 20, { what: 'load after the swap' });
  stop = true;
  await Promise.all(load);
  expect(failures).toEqual([]);
  expect([...versions].sort()).toEqual(['v1', 'v2']);
});

test('a request naming an older version is answered by it (loaded on first use); an unknown version is NOT_FOUND', async () => {
  const history = Array.from(sequences.sequences[2]!.subarray(0, 4), (i) => sequences.itemIds[i]!);
  const seq = (modelVersion?: string) =>
    client.retrieve({
      tenant: '',
      sequence: { itemIds: history },
      k: 5,
      excludeItemIds: [],
      index: 0,
      ...(modelVersion === undefined ? {} : { modelVersion }),
    });
  // v2 is active (the swap above); v1 is loaded again for the requests that name it.
  expect((await seq()).modelVersion).toBe('v2');
  expect((await seq('v1')).modelVersion).toBe('v1');
  expect((await seq('v2')).modelVersion).toBe('v2');
  const text = await client.retrieve({
    tenant: '',
    text: shop.items[5]!.title,
    k: 3,
    excludeItemIds: [],
    index: 0,
    modelVersion: 'v1',
  });
  expect([text.modelVersion, text.items.length]).toEqual(['v1', 3]);
  const enc = await client.encodeSequences({ tenant: '', sequences: [{ itemIds: history }], modelVersion: 'v1' });
  expect(enc.modelVersion).toBe('v1');
  expect(await codeOf(seq('v9'))).toEqual([
    'NOT_FOUND',
    "the model registry has no sasrec version 'v9' for tenant 'default'",
  ]);
  expect(await codeOf(seq('v 1'))).toEqual([
    'INVALID_ARGUMENT',
    'model_version: 1..128 characters of [A-Za-z0-9._:+-]',
  ]);
  const status = (await (await fetch(`http://127.0.0.1:${service.metricsPort}/status`)).json()) as {
    tenants: Record<string, { pinned: Record<string, string[]>; models: Array<{ model: string; version: string }> }>;
  };
  expect(status.tenants['default']?.pinned).toEqual({ sasrec: ['v1'], text_encoder: ['v1'] });
  expect(status.tenants['default']?.models.map((m) => m.version)).toEqual(['v2', 'v2']);
});
