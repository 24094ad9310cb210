/** The trainer job end to end: store -> train -> compare with the active version -> object store + announcement. */
import { experimentV1, MODELS_BUCKET, modelsV1, Streams, Subjects } from '@aisle/contracts';
import { generateShop, type GeneratedEvent } from '@aisle/datagen';
import { createGrpcClient } from '@aisle/runtime';
import { openStore, type StoredEvent, STORE_PORTS } from '@aisle/store';
import {
  runJobProcess,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  acceptedItem,
  publishAcceptedCatalog,
} from '@aisle/testkit';
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
  const store = await openStore(storeFile.url, ['events']);
  await store.events.insertMany(shop.events.map(asStored));
  await store.close();
  const nc = await connect({ servers: nats.url });
  await publishAcceptedCatalog(
    nc,
    shop.items.map((i) => acceptedItem(i)),
  );
  await nc.close();
});

/** A generated event as ingest would have stored it. */
function asStored(e: GeneratedEvent): StoredEvent {
  return { ...e, tenant: 'default', currency: '', ingestedAt: e.occurredAt, requestId: '', position: 0, context: {} };
}

afterAll(async () => {
  await nats?.dispose();
  storeFile?.dispose();
});

test('trains all six models, publishes them, and the next run is compared with the active versions and co-visitation', async () => {
  const env = { AISLE_NATS_URL: nats.url, AISLE_STORE_URL: storeFile.url, AISLE_TRAINER_SASREC_EPOCHS: '4' };
  // First run: publishing itself is under test, so co-visitation is reported but not required.
  const first = await runJobProcess('trainer', { ...env, AISLE_TRAINER_BEAT_BASELINE: 'false' });
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  const published = first.logs.filter((l) => l['msg'] === 'model published');
  expect(published.map((l) => l['model']).sort()).toEqual([
    'churn',
    'ranker',
    'sasrec',
    'search_ranker',
    'session',
    'text_encoder',
  ]);
  for (const l of published.filter((x) => ['sasrec', 'ranker', 'session'].includes(String(x['model']))))
    expect(l['reason']).toMatch(/co-visitation \d/);
  expect(first.logs.find((l) => l['msg'] === 'training backend')?.['backend']).toBe('wasm');

  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(Streams.MODELS.name)).state.messages).toBe(6);
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
        'active/default/search_ranker.json',
        'active/default/session.json',
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

  // Second run: every candidate is now scored against an active version (and sasrec, ranker and session against
  // co-visitation, reported: on a generated shop co-visitation wins, the gate's rule is quality-gate.spec's);
  // the ranker candidate goes into an interleaving experiment against the active ranker instead of replacing it.
  const experimentStore = tempSqliteUrl();
  const experiments = await startServiceProcess('experiment', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: experimentStore.url,
  });
  try {
    const activeRanker = await rankerPointer();
    const second = await runJobProcess('trainer', {
      ...env,
      AISLE_TRAINER_BEAT_BASELINE: 'false',
      AISLE_TRAINER_EXPERIMENT: 'ranker-next',
      AISLE_EXPERIMENT_ADDR: `127.0.0.1:${experiments.grpcPort}`,
    });
    expect(second.code).toBe(0);
    const decisions = second.logs.filter((l) =>
      ['model published', 'candidate rejected; the active version stays', 'candidate entered an experiment'].includes(
        String(l['msg']),
      ),
    );
    expect(decisions).toHaveLength(6);
    // A refused candidate logs the active version's figure as previous_<metric>.
    const activeOf = (d: Record<string, unknown>) =>
      d['active'] ?? Object.entries(d).find(([k]) => k.startsWith('previous_'))?.[1];
    for (const d of decisions) expect(typeof activeOf(d)).toBe('number');
    // ... and, for the models co-visitation competes with, co-visitation's figure on the same slice.
    const baselineOf = (d: Record<string, unknown>) =>
      d['baseline'] ?? Object.entries(d).find(([k]) => k.startsWith('baseline_'))?.[1];
    for (const d of decisions.filter((x) => ['sasrec', 'ranker', 'session'].includes(String(x['model']))))
      expect(typeof baselineOf(d)).toBe('number');
    const entered = decisions.find((d) => d['msg'] === 'candidate entered an experiment');
    expect(entered).toMatchObject({ model: 'ranker', experiment: 'ranker-next' });
    // The active ranker did not change; the candidate is stored and pinned by the experiment's arm.
    expect(await rankerPointer()).toEqual(activeRanker);
    const client = createGrpcClient(experimentV1.ExperimentServiceService, `127.0.0.1:${experiments.grpcPort}`, {
      deadlineMs: 5000,
    });
    try {
      const { experiment } = await client.get({ tenant: 'default', id: 'ranker-next' });
      expect(experiment?.design).toBe(experimentV1.Design.DESIGN_INTERLEAVING);
      expect(experiment?.arms.map((a) => [a.name, a.models['ranker'] ?? ''])).toEqual([
        ['active', ''],
        ['candidate', entered?.['version']],
      ]);
    } finally {
      client.close();
    }
    const nc = await connect({ servers: nats.url });
    try {
      const os = await new Objm(nc).open(MODELS_BUCKET);
      expect(await os.info(`default/ranker/${String(entered?.['version'])}.meta.json`)).not.toBeNull();
    } finally {
      await nc.close();
    }
  } finally {
    await experiments.stop();
    experimentStore.dispose();
  }
});

async function rankerPointer(): Promise<string> {
  const nc = await connect({ servers: nats.url });
  try {
    const os = await new Objm(nc).open(MODELS_BUCKET);
    return new TextDecoder().decode(await os.getBlob('active/default/ranker.json'));
  } finally {
    await nc.close();
  }
}

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

/** A shop with `days` of history (plus one event with a wrong clock), in a fresh store. */
async function shopStore(days: number): Promise<ReturnType<typeof tempSqliteUrl> & { end: number }> {
  const file = tempSqliteUrl();
  const shop = generateShop({ seed: 7, users: 200, items: 80, days });
  const store = await openStore(file.url, STORE_PORTS);
  try {
    const events = shop.events.map(asStored);
    const first = events[0]!;
    await store.events.insertMany([
      ...events,
      { ...first, eventId: 'wrong-clock', occurredAt: Date.UTC(2000, 0, 1), ingestedAt: Date.UTC(2000, 0, 1) },
    ]);
  } finally {
    await store.close();
  }
  return { ...file, end: shop.end };
}

async function rejections(): Promise<modelsV1.ModelRejected[]> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const out: modelsV1.ModelRejected[] = [];
    const info = await jsm.streams.info(Streams.MODELS.name).catch(() => undefined);
    if (!info) return []; // nothing announced yet
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(Streams.MODELS.name, { seq }).catch(() => null);
      if (m?.subject === Subjects.modelsRejected) out.push(modelsV1.ModelRejected.decode(m.data));
    }
    return out;
  } finally {
    await nc.close();
  }
}

test('churn with less history than its horizon needs: not trained on 0 rows, refused with the reason', async () => {
  const short = await shopStore(12);
  try {
    const before = (await rejections()).length;
    const r = await runJobProcess('trainer', {
      AISLE_NATS_URL: nats.url,
      AISLE_STORE_URL: short.url,
      AISLE_TRAINER_TENANT: 'default',
      AISLE_TRAINER_MODELS: 'churn',
    });
    expect(r.code).toBe(0);
    const refused = r.logs.find((l) => l['msg'] === 'candidate rejected; the active version stays');
    expect(refused).toMatchObject({
      model: 'churn',
      reason: expect.stringMatching(/^not trained: 0 labelled/) as unknown,
    });
    expect(r.logs.some((l) => l['msg'] === 'model published')).toBe(false);
    const announced = (await rejections()).slice(before);
    expect(announced.map((a) => [a.name, a.tenant])).toEqual([['churn', 'default']]);
    expect(announced[0]?.reason).toBe(refused?.['reason']);
    // The wrong clock did not stretch the window: 10% of 12 days, not of 26 years.
    const slice = r.logs.find((l) => l['msg'] === 'held-out slice');
    expect(Date.parse(String(slice?.['from']))).toBeGreaterThan(short.end - 2 * 86_400_000);
  } finally {
    short.dispose();
  }
});

test('a held-out slice below the minimum size: the candidate is refused, the active version stays', async () => {
  const r = await runJobProcess('trainer', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_TRAINER_MODELS: 'churn',
    AISLE_TRAINER_MIN_HELD_OUT_CASES: '100000',
  });
  expect(r.code).toBe(0);
  expect(r.logs.find((l) => l['msg'] === 'candidate rejected; the active version stays')).toMatchObject({
    model: 'churn',
    reason: expect.stringMatching(/^held-out slice has \d+ case\(s\), fewer than the 100000 needed/) as unknown,
    heldout_cases: expect.any(Number) as unknown,
  });
  const last = (await rejections()).pop();
  expect(last?.name).toBe('churn');
  expect(last?.metrics['heldout_cases']).toBeGreaterThan(0);
});
