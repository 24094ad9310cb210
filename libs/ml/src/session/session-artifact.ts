import type { SessionModelSpec } from './session-model';

/**
 * The session model as stored in the model registry: its settings, its item vocabulary and the training
 * sessions it searches (the most recent ones), in one binary blob:
 *   "AISLESES" | uint32 version (1) | uint32 header bytes | header JSON {spec, itemIds} |
 *   int32 session count | int32 offsets[count + 1] | int32 items[offsets[count]]
 * All integers little-endian. The ranking service decodes it and rebuilds the scorer with the same code
 * that selected it (`buildSessionModel`).
 */
export interface SessionArtifact {
  spec: SessionModelSpec;
  /** External item ids; index 0 is ''. */
  itemIds: string[];
  /** Item indices per session, oldest session first. */
  sessions: Int32Array[];
}

const MAGIC = 'AISLESES';
const VERSION = 1;

export class SessionArtifactError extends Error {
  override readonly name = 'SessionArtifactError';
}

export function encodeSessionArtifact(a: SessionArtifact): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ spec: a.spec, itemIds: a.itemIds }));
  const total = a.sessions.reduce((n, s) => n + s.length, 0);
  const bytes = 8 + 4 + 4 + header.length + 4 + 4 * (a.sessions.length + 1) + 4 * total;
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, header.length, true);
  out.set(header, 16);
  let o = 16 + header.length;
  view.setInt32(o, a.sessions.length, true);
  o += 4;
  let offset = 0;
  view.setInt32(o, 0, true);
  o += 4;
  for (const s of a.sessions) {
    offset += s.length;
    view.setInt32(o, offset, true);
    o += 4;
  }
  for (const s of a.sessions)
    for (const i of s) {
      view.setInt32(o, i, true);
      o += 4;
    }
  return out;
}

export function decodeSessionArtifact(bytes: Uint8Array): SessionArtifact {
  const fail = (why: string): never => {
    throw new SessionArtifactError(`not a session model artifact: ${why}`);
  };
  if (bytes.length < 20 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) fail('bad magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== VERSION) fail(`format version ${version}, expected ${VERSION}`);
  const headerBytes = view.getUint32(12, true);
  if (16 + headerBytes + 8 > bytes.length) fail('truncated header');
  let header: { spec: SessionModelSpec; itemIds: string[] };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headerBytes))) as typeof header;
  } catch (err) {
    throw new SessionArtifactError('not a session model artifact: header is not JSON', { cause: err });
  }
  if (!Array.isArray(header.itemIds) || typeof header.spec !== 'object') fail('header lacks spec or itemIds');
  let o = 16 + headerBytes;
  const count = view.getInt32(o, true);
  o += 4;
  if (count < 0 || o + 4 * (count + 1) > bytes.length) fail('bad session count');
  const offsets = new Int32Array(count + 1);
  for (let k = 0; k <= count; k++, o += 4) offsets[k] = view.getInt32(o, true);
  const total = offsets[count] as number;
  if (total < 0 || o + 4 * total !== bytes.length) fail('session items do not match the offsets');
  const items = new Int32Array(total);
  const n = header.itemIds.length;
  for (let k = 0; k < total; k++, o += 4) {
    const i = view.getInt32(o, true);
    if (i <= 0 || i >= n) fail(`item index ${i} outside the vocabulary`);
    items[k] = i;
  }
  const sessions: Int32Array[] = [];
  for (let k = 0; k < count; k++) {
    const a = offsets[k] as number;
    const b = offsets[k + 1] as number;
    if (b < a) fail('offsets decrease');
    sessions.push(items.subarray(a, b));
  }
  return { spec: header.spec, itemIds: header.itemIds, sessions };
}

/** What the model registry stores for a session model: no graph, this sidecar (JSON) only. */
export const SESSION_SIDECAR_FORMAT = 'aisle-session-model/1';

/**
 * The sidecar that carries a session model through the model registry (which signs and checks its
 * digest like any other): the binary artifact in base64, with its settings and sizes readable beside it.
 */
export function sessionArtifactSidecar(a: SessionArtifact): Record<string, unknown> {
  return {
    format: SESSION_SIDECAR_FORMAT,
    spec: a.spec,
    items: a.itemIds.length - 1,
    sessions: a.sessions.length,
    artifact: Buffer.from(encodeSessionArtifact(a)).toString('base64'),
  };
}

export function sessionArtifactFromSidecar(sidecar: Record<string, unknown>): SessionArtifact {
  if (sidecar['format'] !== SESSION_SIDECAR_FORMAT || typeof sidecar['artifact'] !== 'string')
    throw new SessionArtifactError(
      `not a session model sidecar: expected format '${SESSION_SIDECAR_FORMAT}' with an artifact string`,
    );
  return decodeSessionArtifact(new Uint8Array(Buffer.from(sidecar['artifact'], 'base64')));
}
