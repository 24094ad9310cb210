import { ContentTypes, Headers, MODELS_BUCKET, modelsV1, Subjects } from '@aisle/contracts';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { createHash } from 'node:crypto';
import type { AsyncJetStreamPublisher } from './js-publisher';

export type ModelName = 'sasrec' | 'text_encoder' | 'ranker' | 'churn';

export interface ModelArtifact {
  meta: modelsV1.ModelPublished;
  onnx: Uint8Array;
  /** Model-specific extras (item vocabulary, tokenizer settings, feature names, threshold). */
  sidecar: Record<string, unknown>;
}

export class ModelIntegrityError extends Error {
  override readonly name = 'ModelIntegrityError';
}

const pointerName = (tenant: string, name: string) => `active/${tenant}/${name}.json`;

/**
 * Model artifacts in the NATS Object Store bucket `aisle-models`: `<tenant>/<name>/<version>.onnx`,
 * its sidecar `.json`, and a pointer `active/<tenant>/<name>.json` holding the active version's
 * metadata. Publishing announces the version on `aisle.models.v1.published`; a service that was down
 * finds the active versions through the pointers.
 */
export class ModelRegistry {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly store: ObjectStore,
  ) {}

  static async open(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<ModelRegistry> {
    const store = await new Objm(nc).create(MODELS_BUCKET, {
      replicas: opts.replicas ?? 1,
      description: 'Aisle model artifacts',
    });
    return new ModelRegistry(nc, store);
  }

  /** Stores a version, makes it active and announces it. */
  async publish(
    publisher: AsyncJetStreamPublisher,
    artifact: {
      tenant: string;
      name: ModelName;
      version: string;
      onnx: Uint8Array;
      sidecar: Record<string, unknown>;
      meta: Partial<modelsV1.ModelPublished>;
    },
  ): Promise<modelsV1.ModelPublished> {
    const base = `${artifact.tenant}/${artifact.name}/${artifact.version}`;
    const sha256 = createHash('sha256').update(artifact.onnx).digest('hex');
    await this.store.putBlob(
      { name: `${base}.onnx`, description: `${artifact.name} ${artifact.version}` },
      artifact.onnx,
    );
    await this.store.putBlob({ name: `${base}.json` }, new TextEncoder().encode(JSON.stringify(artifact.sidecar)));
    const meta = modelsV1.ModelPublished.fromPartial({
      ...artifact.meta,
      name: artifact.name,
      version: artifact.version,
      tenant: artifact.tenant,
      bucket: MODELS_BUCKET,
      objectName: `${base}.onnx`,
      sidecarObjectName: `${base}.json`,
      sha256,
      createdAt: artifact.meta.createdAt ?? new Date(),
    });
    await this.store.putBlob(
      { name: pointerName(artifact.tenant, artifact.name) },
      new TextEncoder().encode(JSON.stringify(modelsV1.ModelPublished.toJSON(meta))),
    );
    await publisher.publish(Subjects.modelsPublished, modelsV1.ModelPublished.encode(meta).finish(), {
      msgId: `${artifact.tenant}:${artifact.name}:${artifact.version}`,
      headers: { [Headers.contentType]: ContentTypes.protobuf },
    });
    return meta;
  }

  async activeMeta(tenant: string, name: ModelName): Promise<modelsV1.ModelPublished | undefined> {
    const raw = await this.store.getBlob(pointerName(tenant, name));
    return raw ? modelsV1.ModelPublished.fromJSON(JSON.parse(new TextDecoder().decode(raw))) : undefined;
  }

  /** Downloads a version and checks its digest. */
  async load(meta: modelsV1.ModelPublished): Promise<ModelArtifact> {
    const onnx = await this.store.getBlob(meta.objectName);
    if (!onnx) throw new ModelIntegrityError(`${meta.objectName} is missing from ${MODELS_BUCKET}`);
    const digest = createHash('sha256').update(onnx).digest('hex');
    if (meta.sha256 && digest !== meta.sha256)
      throw new ModelIntegrityError(`${meta.objectName}: sha256 ${digest} does not match the announced ${meta.sha256}`);
    const sidecarRaw = meta.sidecarObjectName ? await this.store.getBlob(meta.sidecarObjectName) : null;
    return {
      meta,
      onnx,
      sidecar: sidecarRaw ? (JSON.parse(new TextDecoder().decode(sidecarRaw)) as Record<string, unknown>) : {},
    };
  }

  async active(tenant: string, name: ModelName): Promise<ModelArtifact | undefined> {
    const meta = await this.activeMeta(tenant, name);
    return meta ? this.load(meta) : undefined;
  }

  /** Calls `onPublished` for every announcement (core subscription; JetStream publishes reach it too). */
  watch(onPublished: (meta: modelsV1.ModelPublished) => void): Subscription {
    return this.nc.subscribe(Subjects.modelsPublished, {
      callback: (err, msg) => {
        if (err) return;
        try {
          onPublished(modelsV1.ModelPublished.decode(msg.data));
        } catch {
          // A malformed announcement is ignored; the pointer objects stay authoritative.
        }
      },
    });
  }
}
