import { FailedPreconditionError, modelsV1, NotFoundError, ResourceExhaustedError } from '@aisle/contracts';
import { createLogger } from './logger';
import type { ModelArtifact } from './model-registry';
import { PinnedVersions } from './pinned-versions';

interface Fake {
  version: string;
  released: boolean;
  release(): Promise<void>;
}

/** A registry holding `stored` versions (the real one is tested in model-slot.int.spec.ts). */
function setup(stored: string[], opts: { capacity: number; broken?: string[]; retryAfterMs?: number }) {
  const loads: string[] = [];
  const made: Fake[] = [];
  let now = 0;
  let gate: Promise<void> = Promise.resolve();
  const registry = {
    versionMeta: async (_tenant: string, name: string, version: string) =>
      stored.includes(version) ? modelsV1.ModelPublished.fromPartial({ tenant: 't', name, version }) : undefined,
    load: async (meta: modelsV1.ModelPublished): Promise<ModelArtifact> => ({
      meta,
      onnx: new Uint8Array(),
      sidecar: {},
    }),
  };
  const pinned = new PinnedVersions<Fake>({
    registry,
    tenant: 't',
    name: 'sasrec',
    capacity: opts.capacity,
    releaseDelayMs: 0,
    retryAfterMs: opts.retryAfterMs ?? 1000,
    clock: () => now,
    logger: createLogger({ service: 'test', sink: () => undefined }),
    load: async (artifact) => {
      await gate;
      loads.push(artifact.meta.version);
      const m: Fake = {
        version: artifact.meta.version,
        released: false,
        release: async () => void (m.released = true),
      };
      made.push(m);
      return m;
    },
    probe: async (m) => {
      if (opts.broken?.includes(m.version)) throw new Error('scores are NaN');
    },
  });
  return {
    pinned,
    loads,
    made,
    advance: (ms: number) => (now += ms),
    hold: () => {
      let open!: () => void;
      gate = new Promise<void>((r) => (open = r));
      return () => open();
    },
  };
}

const released = async (m: Fake | undefined) => {
  // Eviction releases after a 0 ms grace period.
  await new Promise((r) => setTimeout(r, 5));
  return m?.released;
};

test('loads a version on first use, then answers from memory', async () => {
  const { pinned, loads } = setup(['v1', 'v2'], { capacity: 2 });
  expect((await pinned.get('v1')).version).toBe('v1');
  expect((await pinned.get('v1')).version).toBe('v1');
  expect(loads).toEqual(['v1']);
  expect(pinned.versions()).toEqual(['v1']);
});

test('keeps at most `capacity` versions: the least recently used is evicted and released', async () => {
  const { pinned, loads, made } = setup(['v1', 'v2', 'v3'], { capacity: 2 });
  await pinned.get('v1');
  await pinned.get('v2');
  await pinned.get('v1'); // v1 is now the most recently used
  await pinned.get('v3');
  expect(pinned.versions()).toEqual(['v1', 'v3']);
  expect(await released(made.find((m) => m.version === 'v2'))).toBe(true);
  expect(made.find((m) => m.version === 'v1')?.released).toBe(false);
  // An evicted version loads again when asked for.
  await pinned.get('v2');
  expect(loads).toEqual(['v1', 'v2', 'v3', 'v2']);
  expect(pinned.versions()).toEqual(['v3', 'v2']);
});

test('concurrent requests for a version share one load', async () => {
  const { pinned, loads, hold } = setup(['v1'], { capacity: 2 });
  const open = hold();
  const both = Promise.all([pinned.get('v1'), pinned.get('v1')]);
  open();
  const [a, b] = await both;
  expect(a).toBe(b);
  expect(loads).toEqual(['v1']);
});

test('an unknown version is NOT_FOUND; a version failing its probe is FAILED_PRECONDITION, remembered for a while', async () => {
  const { pinned, loads, made, advance } = setup(['v1', 'bad'], { capacity: 2, broken: ['bad'], retryAfterMs: 1000 });
  await expect(pinned.get('v9')).rejects.toThrow(NotFoundError);
  await expect(pinned.get('v9')).rejects.toThrow(/no sasrec version 'v9'/);
  await expect(pinned.get('bad')).rejects.toThrow(FailedPreconditionError);
  await expect(pinned.get('bad')).rejects.toThrow(/sasrec bad cannot be served: scores are NaN/);
  expect(loads).toEqual(['bad']);
  expect(made[0]?.released).toBe(true);
  advance(1001);
  await expect(pinned.get('bad')).rejects.toThrow(FailedPreconditionError);
  expect(loads).toEqual(['bad', 'bad']);
  expect(pinned.versions()).toEqual([]);
});

test('no more than `capacity` loads at once; capacity 0 serves no other version', async () => {
  const { pinned, hold } = setup(['v1', 'v2'], { capacity: 1 });
  const open = hold();
  const first = pinned.get('v1');
  await expect(pinned.get('v2')).rejects.toThrow(ResourceExhaustedError);
  open();
  await first;
  const none = setup(['v1'], { capacity: 0 });
  await expect(none.pinned.get('v1')).rejects.toThrow(FailedPreconditionError);
});

test('stop releases every loaded version', async () => {
  const { pinned, made } = setup(['v1', 'v2'], { capacity: 2 });
  await pinned.get('v1');
  await pinned.get('v2');
  await pinned.stop();
  expect(made.map((m) => m.released)).toEqual([true, true]);
  expect(pinned.versions()).toEqual([]);
});
