import { experimentV1, FailedPreconditionError, rankingV1 } from '@aisle/contracts';
import type { Experiment, JoinedRequest } from '@aisle/experiments';
import {
  DefinitionConflictError,
  ExperimentService,
  type DefinitionStore,
  type JoinedRequests,
  type ModelActivation,
} from './experiment.service';

const T0 = Date.UTC(2026, 10, 1);

/** The KV bucket's semantics in memory: create fails on a taken key, update is compare-and-set. */
class MemoryDefinitions implements DefinitionStore {
  readonly entries = new Map<string, { experiment: Experiment; revision: number }>();
  private rev = 0;
  /** Simulates another writer: the next update fails this many times. */
  conflicts = 0;

  async get(tenant: string, id: string) {
    return this.entries.get(`${tenant}.${id}`);
  }
  async list(tenant?: string) {
    return [...this.entries.values()].filter((e) => tenant === undefined || e.experiment.tenant === tenant);
  }
  async create(e: Experiment) {
    const k = `${e.tenant}.${e.id}`;
    if (this.entries.has(k)) throw new DefinitionConflictError('taken');
    this.entries.set(k, { experiment: e, revision: ++this.rev });
    return this.rev;
  }
  async update(e: Experiment, revision: number) {
    const k = `${e.tenant}.${e.id}`;
    const cur = this.entries.get(k);
    if (this.conflicts > 0 || cur?.revision !== revision) {
      this.conflicts = Math.max(0, this.conflicts - 1);
      if (cur) cur.revision = ++this.rev;
      throw new DefinitionConflictError('changed');
    }
    this.entries.set(k, { experiment: e, revision: ++this.rev });
    return this.rev;
  }
}

class MemoryJoined implements JoinedRequests {
  data: JoinedRequest[] = [];
  async *requests() {
    yield* this.data;
  }
}

function requests(arm: string, n: number, failed: boolean, offset = 0): JoinedRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    served: {
      requestId: `${arm}-${offset + i}`,
      unit: `u:${arm}-${i % 50}`,
      servedAt: T0 + offset + i,
      arm,
      interleaved: false,
      items: [{ itemId: 'i1', team: '' }],
      runs: [{ arm, latencyMs: 5, degraded: false, failed }],
    },
    outcomes:
      i % 3 === 0
        ? [
            {
              eventId: `${arm}-${offset + i}-c`,
              type: 'click' as const,
              itemId: 'i1',
              occurredAt: T0 + offset + i + 1,
              revenue: 0,
            },
          ]
        : [],
  }));
}

function setup() {
  const definitions = new MemoryDefinitions();
  const joined = new MemoryJoined();
  const published: experimentV1.ExperimentResult[] = [];
  const activated: string[] = [];
  const models: ModelActivation = {
    activate: async (tenant, pins) => {
      for (const [model, version] of Object.entries(pins)) activated.push(`${tenant}/${model}@${version}`);
    },
  };
  let now = T0;
  const service = new ExperimentService(
    definitions,
    joined,
    { publish: async (r) => void published.push(r) },
    () => now,
    models,
  );
  return { service, definitions, joined, published, activated, advance: (ms: number) => (now += ms) };
}

const definition = (extra: Partial<Experiment> = {}) =>
  experimentV1.Experiment.fromPartial({
    id: 'x',
    surface: rankingV1.Surface.SURFACE_RECOMMEND,
    design: experimentV1.Design.DESIGN_AB,
    arms: [{ name: 'control' }, { name: 'treatment', models: { ranker: 'r2' } }],
    guardrails: { maxErrorRate: 0.05, maxDegradedRate: 0, maxP95LatencyMs: 0, minRequests: 100 },
    ...extra,
  });

describe('ExperimentService', () => {
  it('stops with compare-and-set, retrying when another writer got there first, and keeps the first reason', async () => {
    const { service, definitions } = setup();
    await service.create(definition());
    definitions.conflicts = 2;
    const stopped = await service.stop('', 'x', 'enough');
    expect(stopped.stopReason).toBe('enough');
    expect((await service.stop('default', 'x', 'again')).stopReason).toBe('enough');
  });

  it('publishes a result when it changes, and only then', async () => {
    const { service, joined, published, advance } = setup();
    await service.create(definition());
    joined.data = [...requests('control', 120, false), ...requests('treatment', 120, false)];
    advance(1000);
    expect((await service.analyzeAll()).published).toBe(1);
    expect((await service.analyzeAll()).published).toBe(0);
    joined.data.push(...requests('control', 5, false, 1000));
    expect((await service.analyzeAll()).published).toBe(1);
    expect(published).toHaveLength(2);
  });

  it('stops an experiment whose arm trips a guardrail, and says why', async () => {
    const { service, joined, published, advance } = setup();
    await service.create(definition());
    joined.data = [...requests('control', 150, false), ...requests('treatment', 150, true)];
    advance(1000);
    const report = await service.analyzeAll();
    expect(report.stopped.map((s) => [s.tenant, s.id])).toEqual([['default', 'x']]);
    expect(report.stopped[0]?.reason).toContain("guardrail: arm 'treatment'");
    expect((await service.get('default', 'x')).state).toBe(experimentV1.State.STATE_STOPPED);
    expect(published[0]?.state).toBe(experimentV1.State.STATE_STOPPED);
    // Stopped experiments are not stopped again.
    expect((await service.analyzeAll()).stopped).toEqual([]);
  });

  it('promotes only a winner unless forced, activating its pinned versions and stopping the experiment', async () => {
    const { service, joined, activated, advance } = setup();
    await service.create(definition());
    joined.data = [...requests('control', 150, false), ...requests('treatment', 150, false)];
    advance(1000);
    await expect(service.promote('default', 'x', 'treatment', false)).rejects.toBeInstanceOf(FailedPreconditionError);
    const done = await service.promote('default', 'x', 'treatment', true);
    expect(activated).toEqual(['default/ranker@r2']);
    expect(done.activated).toEqual({ ranker: 'r2' });
    expect(done.experiment.stopReason).toBe("promoted arm 'treatment'");
  });

  it('promotes every kind an arm pins, leaves the kinds it does not pin, and refuses what no version carries', async () => {
    const { service, activated } = setup();
    await service.create(
      definition({
        id: 'kinds',
        arms: [
          experimentV1.Arm.fromPartial({ name: 'same' }),
          experimentV1.Arm.fromPartial({ name: 'both', models: { ranker: 'r3', session: 's3' } }),
          experimentV1.Arm.fromPartial({ name: 'heuristic', rankerDisabled: true }),
          experimentV1.Arm.fromPartial({ name: 'boosted', rules: { retentionBoost: 0.5 } }),
        ],
      }),
    );
    await expect(service.promote('default', 'kinds', 'heuristic', true)).rejects.toThrow(/ranker_disabled/);
    await expect(service.promote('default', 'kinds', 'boosted', true)).rejects.toThrow(/rule settings/);
    expect((await service.get('default', 'kinds')).state).toBe(experimentV1.State.STATE_RUNNING);
    const both = await service.promote('default', 'kinds', 'both', true);
    expect(both.activated).toEqual({ ranker: 'r3', session: 's3' });
    expect(activated).toEqual(['default/ranker@r3', 'default/session@s3']);

    // An arm that served the active version of every kind: promoting it changes no model, and stops.
    await service.create(definition({ id: 'plain', surface: rankingV1.Surface.SURFACE_SIMILAR_ITEMS }));
    const plain = await service.promote('default', 'plain', 'control', true);
    expect(plain.activated).toEqual({});
    expect(plain.experiment.stopReason).toBe("promoted arm 'control'");
    expect(activated).toHaveLength(2);
  });
});
