import { ContentTypes, Headers, MODELS_BUCKET, modelsV1, Subjects } from '@aisle/contracts';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { createHash, type KeyObject } from 'node:crypto';
import type { AsyncJetStreamPublisher } from './js-publisher';
import { signModel, verifyModel, type SignedModelFields } from './model-signing';

export type ModelName = 'sasrec' | 'text_encoder' | 'ranker' | 'churn' | 'search_ranker' | 'session';

export interface ModelArtifact {
  meta: modelsV1.ModelPublished;
  onnx: Uint8Array;
  /** Model-specific extras (item vocabulary, tokenizer settings, feature names, threshold). */
  sidecar: Record<string, unknown>;
}

/** A downloaded object does not match what its metadata promised (digest, size), or is missing. */
export class ModelIntegrityError extends Error {
  override readonly name = 'ModelIntegrityError';
}

export class ModelVersionNotFoundError extends Error {
  override readonly name = 'ModelVersionNotFoundError';
}

/** An artifact refused on its metadata, before or instead of any download (too large, malformed, misplaced). */
export class ModelRejectedError extends Error {
  override readonly name = 'ModelRejectedError';
}

export interface ModelLimits {
  /** Largest ONNX graph accepted, in bytes. */
  readonly maxModelBytes: number;
  /** Largest sidecar (JSON) accepted, in bytes. */
  readonly maxSidecarBytes: number;
  /** Most the whole bucket may hold (the object store stream's `max_bytes`). */
  readonly bucketMaxBytes: number;
}

export const DEFAULT_MODEL_LIMITS: ModelLimits = {
  maxModelBytes: 256 * 1024 * 1024,
  maxSidecarBytes: 64 * 1024 * 1024,
  bucketMaxBytes: 4 * 1024 * 1024 * 1024,
};

/** Pointers are small JSON documents; anything larger is not one. */
const MAX_POINTER_BYTES = 64 * 1024;

/** A trained version to store (and, with `publish`, make active). */
export interface NewModelVersion {
  tenant: string;
  name: ModelName;
  version: string;
  onnx: Uint8Array;
  sidecar: Record<string, unknown>;
  meta: Partial<modelsV1.ModelPublished>;
}

export interface ModelRegistryOptions {
  replicas?: number;
  /**
   * The pinned public key: every artifact must carry the trainer's valid signature. Without one, unsigned
   * artifacts are accepted (local development only; the services' configuration refuses that elsewhere).
   */
  verifyKey?: KeyObject | undefined;
  /** The trainer's private key: what it publishes is signed. */
  signingKey?: KeyObject | undefined;
  limits?: Partial<ModelLimits>;
}

const pointerName = (tenant: string, name: string) => `active/${tenant}/${name}.json`;
const metaName = (tenant: string, name: string, version: string) => `${tenant}/${name}/${version}.meta.json`;
const encodeMeta = (meta: modelsV1.ModelPublished) =>
  new TextEncoder().encode(JSON.stringify(modelsV1.ModelPublished.toJSON(meta)));
/** A version's stored metadata (with its training curves) may be larger than a pointer, never this large. */
const MAX_META_BYTES = 4 * 1024 * 1024;
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const SHA256 = /^[0-9a-f]{64}$/;

function signedFields(m: modelsV1.ModelPublished): SignedModelFields {
  return {
    tenant: m.tenant,
    name: m.name,
    version: m.version,
    objectName: m.objectName,
    sha256: m.sha256,
    sizeBytes: m.sizeBytes,
    sidecarObjectName: m.sidecarObjectName,
    sidecarSha256: m.sidecarSha256,
    sidecarSizeBytes: m.sidecarSizeBytes,
  };
}

/**
 * Model artifacts in the NATS Object Store bucket `aisle-models`: `<tenant>/<name>/<version>.onnx`,
 * its sidecar `.json`, and a pointer `active/<tenant>/<name>.json` holding the active version's
 * metadata, signed by the trainer. Publishing announces the version on `aisle.models.v1.published`; a
 * service that was down finds the active versions through the pointers. Nothing is trusted before it is
 * checked: the pointer's signature and declared sizes before any download, each object's size before it
 * is read and its digest after. Each version's metadata is also kept as `<version>.meta.json`, so that
 * activating an older (or any stored) version rewrites the pointer and announces it the same way, and
 * services hot-load it as they would a new one: promote and roll back are one operation.
 */
export class ModelRegistry {
  /** What this process read: artifacts (ONNX graphs and sidecars) and pointers, for tests and `/status`. */
  readonly stats = { downloads: 0, downloadedBytes: 0, pointerReads: 0 };

  private constructor(
    private readonly nc: NatsConnection,
    private readonly store: ObjectStore,
    private readonly opts: ModelRegistryOptions,
    readonly limits: ModelLimits,
  ) {}

  static async open(nc: NatsConnection, opts: ModelRegistryOptions = {}): Promise<ModelRegistry> {
    const limits = { ...DEFAULT_MODEL_LIMITS, ...opts.limits };
    const store = await new Objm(nc).create(MODELS_BUCKET, {
      replicas: opts.replicas ?? 1,
      description: 'Aisle model artifacts',
      max_bytes: limits.bucketMaxBytes,
    });
    return new ModelRegistry(nc, store, opts, limits);
  }

  /** Stores a version, makes it active and announces it. Signed when a signing key is set; refused when larger than the limits. */
  async publish(publisher: AsyncJetStreamPublisher, artifact: NewModelVersion): Promise<modelsV1.ModelPublished> {
    const meta = await this.storeVersion(artifact);
    await this.point(publisher, meta, `${artifact.tenant}:${artifact.name}:${artifact.version}`);
    return meta;
  }

  /**
   * Stores a version without making it active (a candidate for an experiment arm; `activate` promotes it
   * later). Signed when a signing key is set; refused when larger than the limits.
   */
  async storeVersion(artifact: NewModelVersion): Promise<modelsV1.ModelPublished> {
    const base = `${artifact.tenant}/${artifact.name}/${artifact.version}`;
    const sidecar = new TextEncoder().encode(JSON.stringify(artifact.sidecar));
    if (artifact.onnx.byteLength > this.limits.maxModelBytes)
      throw new ModelRejectedError(
        `${base}: ${artifact.onnx.byteLength} bytes, above the ${this.limits.maxModelBytes}-byte model limit`,
      );
    if (sidecar.byteLength > this.limits.maxSidecarBytes)
      throw new ModelRejectedError(
        `${base}: sidecar of ${sidecar.byteLength} bytes, above the ${this.limits.maxSidecarBytes}-byte limit`,
      );
    let meta = modelsV1.ModelPublished.fromPartial({
      ...artifact.meta,
      name: artifact.name,
      version: artifact.version,
      tenant: artifact.tenant,
      bucket: MODELS_BUCKET,
      objectName: `${base}.onnx`,
      sidecarObjectName: `${base}.json`,
      sha256: sha256Hex(artifact.onnx),
      sizeBytes: artifact.onnx.byteLength,
      sidecarSha256: sha256Hex(sidecar),
      sidecarSizeBytes: sidecar.byteLength,
      createdAt: artifact.meta.createdAt ?? new Date(),
    });
    if (this.opts.signingKey) meta = { ...meta, ed25519Signature: signModel(signedFields(meta), this.opts.signingKey) };
    const objectMeta = { version: artifact.version, tenant: artifact.tenant, model: artifact.name };
    await this.store.putBlob(
      { name: meta.objectName, description: `${artifact.name} ${artifact.version}`, metadata: objectMeta },
      artifact.onnx,
    );
    await this.store.putBlob({ name: meta.sidecarObjectName, metadata: objectMeta }, sidecar);
    await this.store.putBlob(
      { name: metaName(artifact.tenant, artifact.name, artifact.version), metadata: objectMeta },
      encodeMeta(meta),
    );
    return meta;
  }

  /** A stored version's metadata, checked like a pointer's; undefined when that version is not stored. */
  async versionMeta(tenant: string, name: ModelName, version: string): Promise<modelsV1.ModelPublished | undefined> {
    const raw = await this.read(metaName(tenant, name, version), { maxBytes: MAX_META_BYTES, optional: true });
    if (!raw) return undefined;
    const meta = modelsV1.ModelPublished.fromJSON(JSON.parse(new TextDecoder().decode(raw)));
    this.check(meta);
    return meta;
  }

  /** Makes `meta` the active version and announces it (the message id keeps JetStream from dropping a re-announcement). */
  private async point(publisher: AsyncJetStreamPublisher, meta: modelsV1.ModelPublished, msgId: string): Promise<void> {
    await this.store.putBlob(
      {
        name: pointerName(meta.tenant, meta.name),
        metadata: { version: meta.version, tenant: meta.tenant, model: meta.name },
      },
      encodeMeta(meta),
    );
    await publisher.publish(Subjects.modelsPublished, modelsV1.ModelPublished.encode(meta).finish(), {
      msgId,
      headers: { [Headers.contentType]: ContentTypes.protobuf },
    });
  }

  /**
   * Deletes all but the newest `keep` versions of a model (never the active one, nor any of `protect`:
   * versions that experiments pin), so that the bucket, which has a size cap, keeps room for the next
   * version. Reads object metadata only.
   */
  async prune(
    tenant: string,
    name: ModelName,
    keep: number,
    protect: ReadonlySet<string> = new Set(),
  ): Promise<string[]> {
    const active = await this.activeMeta(tenant, name).catch(() => undefined);
    const prefix = `${tenant}/${name}/`;
    const versions = new Set<string>();
    const objects: string[] = [];
    for (const o of await this.store.list()) {
      if (o.deleted || !o.name.startsWith(prefix)) continue;
      objects.push(o.name);
      versions.add(o.name.slice(prefix.length).replace(/\.(onnx|meta\.json|json)$/, ''));
    }
    const sorted = [...versions].sort().reverse();
    const doomed = new Set(sorted.slice(Math.max(0, keep)).filter((v) => v !== active?.version && !protect.has(v)));
    const deleted: string[] = [];
    for (const o of objects) {
      if (!doomed.has(o.slice(prefix.length).replace(/\.(onnx|meta\.json|json)$/, ''))) continue;
      await this.store.delete(o);
      deleted.push(o);
    }
    return deleted;
  }

  /** The models a tenant has stored versions of (read from object names alone), sorted by name. */
  async names(tenant: string): Promise<string[]> {
    const prefix = `${tenant}/`;
    const out = new Set<string>();
    for (const o of await this.store.list()) {
      if (o.deleted || !o.name.startsWith(prefix) || !o.name.endsWith('.onnx')) continue;
      const name = o.name.slice(prefix.length).split('/')[0];
      if (name) out.add(name);
    }
    return [...out].sort();
  }

  /**
   * Every stored version of a model, newest first, with its metadata (versions stored before
   * `.meta.json` existed are listed from their object info alone).
   */
  async versions(tenant: string, name: ModelName): Promise<modelsV1.ModelPublished[]> {
    const prefix = `${tenant}/${name}/`;
    const objects = (await this.store.list()).filter(
      (o) => !o.deleted && o.name.startsWith(prefix) && o.name.endsWith('.onnx'),
    );
    const out = await Promise.all(
      objects.map(async (o) => {
        const version = o.name.slice(prefix.length, -'.onnx'.length);
        const raw = await this.read(metaName(tenant, name, version), { maxBytes: MAX_META_BYTES, optional: true });
        return raw
          ? modelsV1.ModelPublished.fromJSON(JSON.parse(new TextDecoder().decode(raw)))
          : modelsV1.ModelPublished.fromPartial({
              name,
              version,
              tenant,
              bucket: MODELS_BUCKET,
              objectName: o.name,
              sidecarObjectName: `${prefix}${version}.json`,
              createdAt: new Date(o.mtime),
            });
      }),
    );
    return out.sort(
      (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0) || (a.version < b.version ? 1 : -1),
    );
  }

  /**
   * Makes a stored version the active one (promote, or roll back to an earlier one) and announces it;
   * services load it through the same watch as a newly published version. Its artifact is checked
   * first, so a pointer never names a version that cannot load.
   */
  async activate(
    publisher: AsyncJetStreamPublisher,
    tenant: string,
    name: ModelName,
    version: string,
  ): Promise<modelsV1.ModelPublished> {
    const meta = (await this.versions(tenant, name)).find((m) => m.version === version);
    if (!meta) throw new ModelVersionNotFoundError(`${tenant}/${name} has no version ${version}`);
    await this.load(meta);
    await this.point(publisher, meta, `${tenant}:${name}:${version}:activated:${Date.now()}`);
    return meta;
  }

  /**
   * The active pointer as its object metadata describes it, read without downloading the pointer: the
   * version it names (a service already serving it has nothing to do) and the digest of its content
   * (a pointer refused once need not be read again). Undefined when there is no pointer.
   */
  async pointerInfo(tenant: string, name: ModelName): Promise<{ version?: string; digest: string } | undefined> {
    const info = await this.store.info(pointerName(tenant, name));
    if (!info || info.deleted) return undefined;
    const version = info.metadata?.['version'];
    return { digest: info.digest, ...(version ? { version } : {}) };
  }

  /**
   * The active version's metadata, checked: a pointer that is too large, malformed, names another model,
   * or (with a pinned key) is unsigned or forged is refused here, before any artifact is downloaded.
   */
  async activeMeta(tenant: string, name: ModelName): Promise<modelsV1.ModelPublished | undefined> {
    const ptr = pointerName(tenant, name);
    const raw = await this.read(ptr, { maxBytes: MAX_POINTER_BYTES, pointer: true });
    if (!raw) return undefined;
    let meta: modelsV1.ModelPublished;
    try {
      meta = modelsV1.ModelPublished.fromJSON(JSON.parse(new TextDecoder().decode(raw)));
    } catch (err) {
      throw new ModelRejectedError(`${ptr} is not a valid model pointer`, { cause: err });
    }
    if (meta.tenant !== tenant || meta.name !== name)
      throw new ModelRejectedError(`${ptr} names ${meta.tenant}/${meta.name}, not ${tenant}/${name}`);
    this.check(meta);
    return meta;
  }

  /** Checks a version's metadata without downloading anything. */
  check(meta: modelsV1.ModelPublished): void {
    const what = `${meta.tenant}/${meta.name} ${meta.version}`;
    const base = `${meta.tenant}/${meta.name}/${meta.version}`;
    if (meta.objectName !== `${base}.onnx` || (meta.sidecarObjectName && meta.sidecarObjectName !== `${base}.json`))
      throw new ModelRejectedError(`${what}: objects outside ${base}.{onnx,json}`);
    if (!SHA256.test(meta.sha256)) throw new ModelRejectedError(`${what}: no sha256 digest`);
    if (this.opts.verifyKey) verifyModel(signedFields(meta), meta.ed25519Signature, this.opts.verifyKey);
    if (meta.sizeBytes > this.limits.maxModelBytes)
      throw new ModelRejectedError(
        `${what}: ${meta.sizeBytes} bytes, above the ${this.limits.maxModelBytes}-byte model limit`,
      );
    if (meta.sidecarSizeBytes > this.limits.maxSidecarBytes)
      throw new ModelRejectedError(
        `${what}: sidecar of ${meta.sidecarSizeBytes} bytes, above the ${this.limits.maxSidecarBytes}-byte limit`,
      );
  }

  /** Downloads a checked version: sizes from object metadata first, then the bytes, then their digests. */
  async load(meta: modelsV1.ModelPublished): Promise<ModelArtifact> {
    this.check(meta);
    const onnx = (await this.read(meta.objectName, {
      maxBytes: this.limits.maxModelBytes,
      size: meta.sizeBytes,
      sha256: meta.sha256,
    })) as Uint8Array;
    if (!meta.sidecarObjectName) return { meta, onnx, sidecar: {} };
    const raw = (await this.read(meta.sidecarObjectName, {
      maxBytes: this.limits.maxSidecarBytes,
      size: meta.sidecarSizeBytes,
      sha256: meta.sidecarSha256,
    })) as Uint8Array;
    let sidecar: unknown;
    try {
      sidecar = JSON.parse(new TextDecoder().decode(raw));
    } catch (err) {
      throw new ModelRejectedError(`${meta.sidecarObjectName} is not JSON`, { cause: err });
    }
    if (sidecar === null || typeof sidecar !== 'object' || Array.isArray(sidecar))
      throw new ModelRejectedError(`${meta.sidecarObjectName} is not a JSON object`);
    return { meta, onnx, sidecar: sidecar as Record<string, unknown> };
  }

  async active(tenant: string, name: ModelName): Promise<ModelArtifact | undefined> {
    const meta = await this.activeMeta(tenant, name);
    return meta ? this.load(meta) : undefined;
  }

  /**
   * Reads one object: its size from the object metadata first (over `maxBytes`, or not the declared
   * `size`: refused unread), then the chunks, stopping if they run past the limit anyway. A missing
   * pointer is no error (nothing published yet); a missing artifact is.
   */
  private async read(
    name: string,
    want: { maxBytes: number; size?: number; sha256?: string; pointer?: boolean; optional?: boolean },
  ): Promise<Uint8Array | undefined> {
    const info = await this.store.info(name);
    if (!info || info.deleted) {
      if (want.pointer || want.optional) return undefined;
      throw new ModelIntegrityError(`${name} is missing from ${MODELS_BUCKET}`);
    }
    if (info.options?.link) throw new ModelRejectedError(`${name} is a link; links are not followed`);
    if (info.size > want.maxBytes)
      throw new ModelRejectedError(`${name}: ${info.size} bytes, above the ${want.maxBytes}-byte limit`);
    if (want.size && info.size !== want.size)
      throw new ModelIntegrityError(`${name}: ${info.size} bytes stored, ${want.size} announced`);
    const res = await this.store.get(name);
    if (!res) throw new ModelIntegrityError(`${name} is missing from ${MODELS_BUCKET}`);
    const reader = res.data.getReader();
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > want.maxBytes) {
        await reader.cancel();
        throw new ModelRejectedError(`${name}: more than ${want.maxBytes} bytes`);
      }
      parts.push(value);
    }
    await res.error;
    const bytes = Buffer.concat(parts, total);
    if (want.pointer) this.stats.pointerReads += 1;
    else {
      this.stats.downloads += 1;
      this.stats.downloadedBytes += total;
    }
    if (want.sha256 && sha256Hex(bytes) !== want.sha256)
      throw new ModelIntegrityError(`${name}: sha256 does not match the announced ${want.sha256}`);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
