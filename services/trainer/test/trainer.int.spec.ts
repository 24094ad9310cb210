/** The trainer job end to end: store -> train -> compare with the active version -> object store + announcement. */
import { MODELS_BUCKET, modelsV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop } from '@aisle/datagen';
import { openStore } from '@aisle/store';
import { runJobProcess, startNatsServer, tempSqliteUrl, type NatsServerHandle } from '@aisle/testkit';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';

jest.setTimeout(300_000);

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  const shop = generateShop({ seed: 5, users: 250, items: 160, days: 45 });
  const store = await openStore(storeFile.url);
  await store.items.upsertMany(
    shop.items.map((i) => ({ ...i, tenant: 'default', attributes: {}, ingestedAt: i.updatedAt })),
  );
  await store.events.insertMany(
    shop.events.map((e) => ({
      ...e,
      tenant: 'default',
      currency: '',
      ingestedAt: e.occurredAt,
      requestId: '',
      position: 0,
      context: {},
    })),
  );
  await store.close();
});

afterAll(async () => {
  await nats?.dispose();
  storeFile?.dispose();
});

test('trains all four models, publishes them, and compares the next run with the active versions', async () => {
  const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url, AISLE_TRAINER_SASREC_EPOCHS: '4' };
  const first = await runJobProcess('trainer', env);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  const published = first.logs.filter((l) => l['msg'] === 'model published').map((l) => l['model']);
  expect(published.sort()).toEqual(['churn', 'ranker', 'sasrec', 'text_encoder']);
  expect(first.logs.find((l) => l['msg'] === 'training backend')?.['backend']).toBe('wasm');

  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(Streams.MODELS.name)).state.messages).toBe(4);
    const announced = modelsV1.ModelPublished.decode(
      (await jsm.streams.getMessage(Streams.MODELS.name, { last_by_subj: Subjects.modelsPublished }))!.data,
    );
    expect(announced.bucket).toBe(MODELS_BUCKET);
    expect(announced.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(announced.signature?.inputs.length).toBeGreaterThan(0);
    expect(Object.keys(announced.metrics).some((k) => k.startsWith('heldout_'))).toBe(true);
    const os = await new Objm(nc).open(MODELS_BUCKET);
    const names = (await os.list()).map((o) => o.name).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'active/default/churn.json',
        'active/default/ranker.json',
        'active/default/sasrec.json',
        'active/default/text_encoder.json',
      ]),
    );
    const sasrecPointer = JSON.parse(new TextDecoder().decode(await os.getBlob('active/default/sasrec.json'))) as {
      objectName: string;
      metrics: Record<string, number>;
    };
    expect(sasrecPointer.metrics['heldout_ndcg@10']).toBeGreaterThan(0.05);
  } finally {
    await nc.close();
  }

  // Second run: every candidate is now scored against an active version.
  const second = await runJobProcess('trainer', env);
  expect(second.code).toBe(0);
  const decisions = second.logs.filter(
    (l) => l['msg'] === 'model published' || l['msg'] === 'candidate worse than the active model; kept the active one',
  );
  expect(decisions).toHaveLength(4);
  for (const d of decisions) expect(typeof d['active']).toBe('number');
});

test('too few events: nothing is trained, exit 0', async () => {
  const empty = tempSqliteUrl();
  try {
    const r = await runJobProcess('trainer', { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: empty.url });
    expect(r.code).toBe(0);
    expect(r.logs.some((l) => l['msg'] === 'not enough events to train; nothing published')).toBe(true);
  } finally {
    empty.dispose();
  }
});
