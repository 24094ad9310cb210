import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Model artifacts are signed by the trainer (Ed25519, private key from a Secret) and verified by every
 * service against a pinned public key before anything is downloaded: the signature covers the version,
 * the object names, their sizes and their SHA-256 digests, so a forged or replaced pointer is refused on
 * its metadata alone, and a downloaded object must match the digest the trainer signed.
 */

export class ModelSignatureError extends Error {
  override readonly name = 'ModelSignatureError';
}

/** What a signature covers. */
export interface SignedModelFields {
  readonly tenant: string;
  readonly name: string;
  readonly version: string;
  readonly objectName: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly sidecarObjectName: string;
  readonly sidecarSha256: string;
  readonly sidecarSizeBytes: number;
}

/** The signed bytes: a JSON array, so that no field can run into the next. */
export function signingPayload(f: SignedModelFields): Buffer {
  return Buffer.from(
    JSON.stringify([
      'aisle-model-v1',
      f.tenant,
      f.name,
      f.version,
      f.objectName,
      f.sha256,
      f.sizeBytes,
      f.sidecarObjectName,
      f.sidecarSha256,
      f.sidecarSizeBytes,
    ]),
    'utf8',
  );
}

/** Signs with an Ed25519 private key; base64. */
export function signModel(fields: SignedModelFields, key: KeyObject): string {
  return sign(null, signingPayload(fields), key).toString('base64');
}

/** Throws ModelSignatureError unless `signature` is the key's Ed25519 signature over `fields`. */
export function verifyModel(fields: SignedModelFields, signature: string, key: KeyObject): void {
  if (!signature) throw new ModelSignatureError(`${fields.name} ${fields.version} is not signed`);
  let ok = false;
  try {
    ok = verify(null, signingPayload(fields), key, Buffer.from(signature, 'base64'));
  } catch (err) {
    throw new ModelSignatureError(`${fields.name} ${fields.version}: unreadable signature`, { cause: err });
  }
  if (!ok)
    throw new ModelSignatureError(
      `${fields.name} ${fields.version}: signature does not match the pinned public key (forged or altered)`,
    );
}

// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The pinned public key, as configured: base64 of the raw 32-byte Ed25519 key (what `pnpm aisle
 * model-keys` prints) or a PEM `PUBLIC KEY` block.
 */
export function parseModelPublicKey(text: string): KeyObject {
  const t = text.trim();
  let key: KeyObject;
  if (t.startsWith('-----BEGIN')) key = createPublicKey(t);
  else {
    const raw = Buffer.from(t, 'base64');
    if (raw.length !== 32) throw new Error('must be base64 of a 32-byte Ed25519 public key, or a PEM public key');
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`must be an Ed25519 key, not ${key.asymmetricKeyType}`);
  return key;
}

/** The trainer's private key from a PEM (PKCS #8) file, e.g. mounted from a Secret. */
export function readModelSigningKey(path: string): KeyObject {
  const key = createPrivateKey(readFileSync(path));
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`${path}: must be an Ed25519 private key, not ${key.asymmetricKeyType}`);
  return key;
}

/** A fresh key pair: the private key as PEM (for the trainer's Secret), the public key as base64 (for services). */
export function generateModelKeys(): { privateKeyPem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: der.subarray(ED25519_SPKI_PREFIX.length).toString('base64'),
  };
}
