/**
 * Issue #18 (models are not authenticated; announcements amplify load) and #9 (a bad model wedges a
 * service), against a real nats-server: signed versions hot-swap; forged pointers, unsigned, oversized
 * or lying artifacts and versions that fail their probe change nothing and are not downloaded; a burst
 * of announcements downloads nothing twice.
 */
import { MODELS_BUCKET, modelsV1, Streams, Subjects } from '@aisle/contracts';
import { startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  AsyncJetStreamPublisher,
  ensureStreams,
  generateModelKeys,
  jetStreamOf,
  memoryLogger,
  ModelRegistry,
  ModelSlot,
  parseModelPublicKey,
  signModel,
  type ModelArtifact,
  type ServingModel,
} from '../src';

let nats: NatsServerHandle;
let nc: NatsConnection;
let publisher: AsyncJetStreamPublisher;
let os: ObjectStore;
const keys = generateModelKeys();
const signingKey = createPrivateKey(keys.privateKeyPem);
const MB = 1024 * 1024;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  publisher = new AsyncJetStreamPublisher(nc);
  await ensureStreams((await jetStreamOf(nc)).jsm, [Streams.MODELS]);
});
afterAll(async () => {
  publisher?.close();
  await nc?.close();
  await nats?.dispose();
});

/** What the trainer does: sign and publish. */
async function publish(registry: ModelRegistry, version: string, onnxBytes = 1024, sidecar: object = {}) {
  return registry.publish(publisher, {
    tenant: 'shop',
    name: 'ranker',
    version,
    onnx: new Uint8Array(onnxBytes).fill(version.length),
    sidecar: { ...sidecar },
    meta: {},
  });
}

/** A bus client holding the services' credentials (or a replay of old messages): 40 announcements at once. */
async function announceBurst(meta: modelsV1.ModelPublished, n = 40) {
  for (let i = 0; i < n; i++) nc.publish(Subjects.modelsPublished, modelsV1.ModelPublished.encode(meta).finish());
  await nc.flush();
  await new Promise((r) => setTimeout(r, 300));
}

interface FakeModel extends ServingModel {
  released: boolean;
}

function serviceSlot(registry: ModelRegistry) {
  const loaded: string[] = [];
  const logger = memoryLogger();
  const slot = new ModelSlot<FakeModel>({
    registry,
    tenant: 'shop',
    name: 'ranker',
    load: async (a: ModelArtifact) => {
      loaded.push(a.meta.version);
      return {
        version: a.meta.version,
        released: false,
        // A version whose sidecar says so answers NaN, as a ranker trained on nothing would.
        nan: a.sidecar['nan'] === true,
        async release() {
          this.released = true;
        },
      } as FakeModel & { nan: boolean };
    },
    probe: async (m) => {
      if ((m as FakeModel & { nan: boolean }).nan) throw new Error('score[0] is NaN');
    },
    activate: () => undefined,
    logger,
    releaseDelayMs: 10,
  });
  return { slot, loaded, logger };
}

test('signed versions hot-swap once each, whatever the announcements; the refused change nothing', async () => {
  const trainer = await ModelRegistry.open(nc, { signingKey, limits: { maxModelBytes: 64 * MB } });
  const service = await ModelRegistry.open(nc, {
    verifyKey: parseModelPublicKey(keys.publicKey),
    limits: { maxModelBytes: 4 * MB },
  });
  os = await new Objm(nc).open(MODELS_BUCKET);
  const { slot, loaded, logger } = serviceSlot(service);
  try {
    const v1 = await publish(trainer, '20261201T000000Z');
    expect(v1.ed25519Signature).not.toBe('');
    await slot.start();
    expect(slot.current?.version).toBe(v1.version);
    expect(service.stats.downloads).toBe(2); // graph and sidecar

    // A burst of announcements of the serving version: nothing read beyond object metadata.
    const reads = service.stats.pointerReads;
    await announceBurst(v1);
    expect(service.stats.downloads).toBe(2);
    expect(service.stats.pointerReads).toBe(reads);

    // A new version announced 40 times: downloaded and loaded once.
    const first = slot.current as FakeModel;
    const v2 = await publish(trainer, '20261202T000000Z');
    await announceBurst(v2);
    await slot.refresh();
    expect(slot.current?.version).toBe(v2.version);
    expect(loaded).toEqual([v1.version, v2.version]);
    expect(service.stats.downloads).toBe(4);
    await new Promise((r) => setTimeout(r, 50));
    expect(first.released).toBe(true);

    const refusals = () => logger.lines.filter((l) => String(l['msg']).startsWith('model refused'));
    // Publishing announces, so the slot may refuse before this refresh does (then this one reads nothing).
    const refusedWith = async (why: RegExp) => {
      const before = refusals().length;
      await slot.refresh();
      expect(refusals().length).toBeGreaterThan(before);
      expect(String((refusals().at(-1)?.['err'] as { message?: string } | undefined)?.message)).toMatch(why);
      expect(slot.current?.version).toBe(v2.version);
    };
    const downloads = service.stats.downloads;

    // An unsigned 16 MB artifact (a bus client with bucket access, no key): refused on its pointer.
    const unsigned = await ModelRegistry.open(nc, { limits: { maxModelBytes: 64 * MB } });
    const forged = await publish(unsigned, '20261203T000000Z', 16 * MB);
    await refusedWith(/is not signed/);
    // The same pointer announced again and again: not even the pointer is read twice.
    const pointerReads = service.stats.pointerReads;
    await announceBurst(forged);
    expect(service.stats.pointerReads).toBe(pointerReads);

    // A forged pointer: the genuine v2 signature over a new version and digest.
    const tampered = { ...v2, version: '20261204T000000Z', objectName: 'shop/ranker/20261204T000000Z.onnx' };
    tampered.sidecarObjectName = 'shop/ranker/20261204T000000Z.json';
    await os.putBlob(
      { name: 'shop/ranker/20261204T000000Z.onnx' },
      new Uint8Array(v2.sizeBytes), // same size, other bytes
    );
    await os.putBlob(
      { name: 'active/shop/ranker.json', metadata: { version: tampered.version } },
      new TextEncoder().encode(JSON.stringify(modelsV1.ModelPublished.toJSON(tampered))),
    );
    await refusedWith(/does not match the pinned public key/);

    // Signed by the trainer but larger than this service accepts: refused from its metadata.
    await publish(trainer, '20261205T000000Z', 5 * MB);
    await refusedWith(/above the 4194304-byte model limit/);

    // Signed, but the object was swapped for a larger one afterwards: its stored size gives it away.
    const swapped = { ...v2, version: '20261206T000000Z', objectName: 'shop/ranker/20261206T000000Z.onnx' };
    swapped.sidecarObjectName = 'shop/ranker/20261206T000000Z.json';
    swapped.ed25519Signature = signModel(swapped, signingKey);
    await os.putBlob({ name: swapped.objectName }, new Uint8Array(3 * MB));
    await os.putBlob(
      { name: 'active/shop/ranker.json', metadata: { version: swapped.version } },
      new TextEncoder().encode(JSON.stringify(modelsV1.ModelPublished.toJSON(swapped))),
    );
    await refusedWith(/3145728 bytes stored, 1024 announced/);

    expect(service.stats.downloads).toBe(downloads);

    // Signed and genuine, but its answers are NaN: downloaded once, refused, not downloaded again.
    const nan = await publish(trainer, '20261207T000000Z', 1024, { nan: true });
    await refusedWith(/NaN/);
    expect(service.stats.downloads).toBe(downloads + 2);
    await announceBurst(nan);
    expect(service.stats.downloads).toBe(downloads + 2);

    // An older signed version that the pointer names (a roll back) is served like any other.
    await publish(trainer, '20261130T000000Z');
    await slot.refresh();
    expect(slot.current?.version).toBe('20261130T000000Z');

    // And the next good version still goes through.
    await publish(trainer, '20261208T000000Z');
    await slot.refresh();
    expect(slot.current?.version).toBe('20261208T000000Z');
  } finally {
    await slot.stop();
  }
});

test('the trainer keeps the newest versions and never the pointer target deleted', async () => {
  const trainer = await ModelRegistry.open(nc, { signingKey });
  for (const v of ['20260101T000000Z', '20260102T000000Z', '20260103T000000Z'])
    await trainer.publish(publisher, {
      tenant: 'prune',
      name: 'churn',
      version: v,
      onnx: new Uint8Array(10),
      sidecar: {},
      meta: {},
    });
  const deleted = await trainer.prune('prune', 'churn', 2);
  expect(deleted.sort()).toEqual([
    'prune/churn/20260101T000000Z.json',
    'prune/churn/20260101T000000Z.meta.json',
    'prune/churn/20260101T000000Z.onnx',
  ]);
  // The trainer verifies what it scores with the public half of its own key.
  const verifier = await ModelRegistry.open(nc, { verifyKey: createPublicKey(signingKey) });
  expect((await verifier.active('prune', 'churn'))?.meta.version).toBe('20260103T000000Z');
});
