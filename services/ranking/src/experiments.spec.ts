import { experimentV1, InvalidArgumentError, rankingV1 } from '@aisle/contracts';
import {
  assignArm,
  assignmentPlan,
  normalizeExperiment,
  unitOf,
  type Experiment,
  type InProcessModel,
} from '@aisle/experiments';
import {
  NO_FILTERS,
  type RankerPort,
  type RankingResult,
  type RecommendRequest,
  type SearchModelPort,
  type ServedEvent,
  type SessionModelPort,
} from '@aisle/ranking-core';
import { ArmNotReadyError, ArmPipelineCache, type ArmModels, type ArmSettings } from './arm-pipelines';
import { ExperimentRouter, type RankingSurfaces } from './experiments';

const NOW = Date.UTC(2026, 10, 30);

/** A pipeline that answers a fixed list, named after itself, and can be made to fail. */
class FakePipeline implements RankingSurfaces {
  calls = 0;
  ranker: RankerPort | undefined;
  searchModel: SearchModelPort | undefined;
  session: SessionModelPort | undefined;
  fail: Error | undefined;
  constructor(
    readonly name: string,
    private readonly items: string[],
  ) {}
  setRanker(r: RankerPort | undefined) {
    this.ranker = r;
  }
  setSearchModel(m: SearchModelPort | undefined): void {
    this.searchModel = m;
  }
  setSessionModel(m: SessionModelPort | undefined): void {
    this.session = m;
  }
  private async answer(): Promise<RankingResult> {
    this.calls++;
    if (this.fail) throw this.fail;
    return {
      items: this.items.map((itemId, i) => ({
        itemId,
        score: 10 - i,
        reasons: [],
        sources: [this.name],
        features: {},
        contributions: {},
        rankerScore: 0,
      })),
      modelVersion: this.name,
      degraded: false,
      degradedReasons: [],
      requestId: `${this.name}-req`,
    };
  }
  recommend = () => this.answer();
  search = () => this.answer();
  rank = () => this.answer();
  similarItems = () => this.answer();
}

/** A stand-in of a kind: only its version is looked at here. */
function fakeModel<K extends InProcessModel>(_model: K, version: string): ArmModels[K] {
  return { version, score: async () => new Float32Array() } as unknown as ArmModels[K];
}

const req = (userId: string): RecommendRequest => ({
  userId,
  limit: 4,
  filters: NO_FILTERS,
  context: {},
  explain: false,
  sessionItemIds: [],
});

function define(design: experimentV1.Design, extra: Partial<Experiment> = {}): Experiment {
  return normalizeExperiment(
    experimentV1.Experiment.fromPartial({
      tenant: 'shop',
      id: 'x',
      surface: rankingV1.Surface.SURFACE_RECOMMEND,
      design,
      arms: [{ name: 'a' }, { name: 'b' }],
      ...extra,
    }),
    NOW - 1000,
  );
}

function setup(experiments: Experiment[]) {
  const production = new FakePipeline('production', ['p1', 'p2', 'p3', 'p4']);
  const fallback = new FakePipeline('fallback', ['p1', 'p2', 'p3', 'p4']);
  const made: FakePipeline[] = [];
  const lists: Record<string, string[]> = { a: ['x1', 'x2', 'x3', 'x4'], b: ['y1', 'x1', 'y2', 'y3'] };
  let armIndex = 0;
  const settings: ArmSettings[] = [];
  const arms = new ArmPipelineCache(
    (s) => {
      settings.push(s);
      const name = ['a', 'b'][armIndex++ % 2] as string;
      const p = new FakePipeline(name, lists[name] as string[]);
      made.push(p);
      return p;
    },
    {
      get: <K extends InProcessModel>(model: K, v: string): ArmModels[K] => {
        if (v === 'ready' || v.startsWith('pinned-')) return fakeModel(model, v);
        throw new ArmNotReadyError(`${model} ${v} is not in the model registry`);
      },
    },
  );
  const served: ServedEvent[] = [];
  const router = new ExperimentRouter({
    tenant: 'shop',
    production,
    fallback,
    arms,
    experiments: () => experiments,
    impressions: { served: (e) => void served.push(e) },
    newRequestId: () => 'merged-req',
    clock: () => NOW,
  });
  return { router, production, fallback, made, served, settings, arms };
}

describe('ExperimentRouter', () => {
  it('leaves requests outside experiments to production (which publishes its own impression)', async () => {
    const { router, production, served } = setup([]);
    const r = await router.recommend(req('u1'));
    expect(r.modelVersion).toBe('production');
    expect(production.calls).toBe(1);
    expect(served).toEqual([]);
  });

  it('A/B: ranks a unit with its sticky arm and publishes the exposure', async () => {
    const e = define(experimentV1.Design.DESIGN_AB);
    const { router, served, production } = setup([e]);
    for (const user of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']) {
      const arm = assignArm(assignmentPlan(e), unitOf(user, ''));
      await router.recommend(req(user));
      const last = served[served.length - 1];
      expect(last?.experiment).toEqual({
        experimentId: 'x',
        arm,
        interleaved: false,
        runs: [{ arm, latencyMs: 0, degraded: false, failed: false, error: '' }],
      });
      expect(last?.userId).toBe(user);
    }
    expect(production.calls).toBe(0);
  });

  it('anonymous visitors are assigned by their session', async () => {
    const e = define(experimentV1.Design.DESIGN_AB);
    const { router, served } = setup([e]);
    await router.recommend({ ...req(''), sessionId: 's-1', sessionItemIds: ['p1'] });
    expect(served[0]?.sessionId).toBe('s-1');
    expect(served[0]?.experiment?.arm).toBe(assignArm(assignmentPlan(e), 's:s-1'));
  });

  it('interleaving: merges both arms by team draft, one request id, a team per item', async () => {
    const { router, served } = setup([define(experimentV1.Design.DESIGN_INTERLEAVING)]);
    const r = await router.recommend(req('u1'));
    expect(r.requestId).toBe('merged-req');
    expect(r.items).toHaveLength(4);
    const e = served[0];
    expect(e?.experiment?.interleaved).toBe(true);
    expect(e?.experiment?.runs.map((x) => x.arm)).toEqual(['a', 'b']);
    // x1 is in both lists: shown once; teams alternate within each round.
    expect(new Set(e?.items.map((i) => i.itemId)).size).toBe(4);
    expect(e?.items.filter((i) => i.team === 'a')).toHaveLength(2);
    expect(e?.items.filter((i) => i.team === 'b')).toHaveLength(2);
    expect(e?.items.map((i) => i.position)).toEqual([1, 2, 3, 4]);
  });

  it('an arm that cannot rank falls back to production, and the exposure says why', async () => {
    const e = define(experimentV1.Design.DESIGN_AB, {
      arms: [
        experimentV1.Arm.fromPartial({ name: 'a' }),
        experimentV1.Arm.fromPartial({ name: 'b', models: { ranker: 'missing' } }),
      ],
      holdout: 0,
    });
    const { router, served, fallback } = setup([e]);
    let user = 0;
    while (assignArm(assignmentPlan(e), unitOf(`u${user}`, '')) !== 'b') user++;
    const r = await router.recommend(req(`u${user}`));
    expect(r.modelVersion).toBe('fallback');
    expect(fallback.calls).toBe(1);
    expect(served[0]?.experiment?.runs[0]).toMatchObject({
      arm: 'b',
      failed: true,
      error: 'ArmNotReadyError: ranker missing is not in the model registry',
    });
  });

  it('interleaving with a failing arm serves the other alone, crediting neither team', async () => {
    const { router, served, made } = setup([define(experimentV1.Design.DESIGN_INTERLEAVING)]);
    await router.recommend(req('u1'));
    (made.find((p) => p.name === 'b') as FakePipeline).fail = new Error('boom');
    const r = await router.recommend(req('u2'));
    expect(r.modelVersion).toBe('a');
    expect(served[1]?.experiment).toMatchObject({ interleaved: false, arm: '' });
    expect(served[1]?.experiment?.runs.map((x) => [x.arm, x.failed])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(served[1]?.items.every((i) => !i.team)).toBe(true);
  });

  it('a bad request is the caller\u2019s error, not an arm failure', async () => {
    const { router, made } = setup([define(experimentV1.Design.DESIGN_AB)]);
    await router.recommend(req('u1'));
    for (const p of made) p.fail = new InvalidArgumentError('filters.min_price', 'must be >= 0');
    await expect(router.recommend(req('u1'))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(router.recommend({ ...req('u1'), limit: 5000 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('builds each arm once with its rules and remote pins; arms without a pin follow production ranker swaps', async () => {
    const e = define(experimentV1.Design.DESIGN_INTERLEAVING, {
      arms: [
        experimentV1.Arm.fromPartial({ name: 'a' }),
        experimentV1.Arm.fromPartial({
          name: 'b',
          models: { ranker: 'ready', sasrec: 's1', churn: 'c1' },
          rules: { retentionBoost: 0.5, churnRiskThreshold: 0.6, maxPerCategory: 2 },
        }),
      ],
    });
    const { router, made, settings, arms } = setup([e]);
    const v1 = { version: 'v1', score: async () => new Float32Array() };
    arms.setActive('ranker', v1);
    await router.recommend(req('u1'));
    await router.recommend(req('u2'));
    expect(made).toHaveLength(2);
    expect(settings).toEqual([
      { maxPerCategory: undefined, retention: undefined, remote: {} },
      { maxPerCategory: 2, retention: { boost: 0.5, threshold: 0.6 }, remote: { sasrec: 's1', churn: 'c1' } },
    ]);
    expect(made[0]?.ranker?.version).toBe('v1');
    expect(made[1]?.ranker?.version).toBe('ready');
    arms.setActive('ranker', { version: 'v2', score: async () => new Float32Array() });
    expect(made[0]?.ranker?.version).toBe('v2');
    expect(made[1]?.ranker?.version).toBe('ready');
    arms.retain([]);
    await router.recommend(req('u3'));
    expect(made).toHaveLength(4);
  });

  it('an arm pins any kind ranking serves (session, search model); other kinds follow production', async () => {
    const e = define(experimentV1.Design.DESIGN_INTERLEAVING, {
      arms: [
        experimentV1.Arm.fromPartial({ name: 'a', rankerDisabled: true }),
        experimentV1.Arm.fromPartial({ name: 'b', models: { session: 'pinned-s1' } }),
      ],
    });
    const { router, made, arms, fallback } = setup([e]);
    arms.setActive('ranker', fakeModel('ranker', 'r1'));
    arms.setActive('session', fakeModel('session', 's-active'));
    arms.setActive('search_ranker', fakeModel('search_ranker', 'q-active'));
    await router.recommend(req('u1'));
    const [a, b] = made as [FakePipeline, FakePipeline];
    // a: no ranker (disabled), production's session and search models.
    expect([a.ranker?.version, a.session?.version, a.searchModel?.version]).toEqual([
      undefined,
      's-active',
      'q-active',
    ]);
    // b: production's ranker and search model, its own session model.
    expect([b.ranker?.version, b.session?.version, b.searchModel?.version]).toEqual(['r1', 'pinned-s1', 'q-active']);
    // Swaps reach the kinds an arm follows, never a pin nor a disabled ranker.
    arms.setActive('session', fakeModel('session', 's-next'));
    arms.setActive('ranker', fakeModel('ranker', 'r2'));
    expect([a.ranker?.version, a.session?.version]).toEqual([undefined, 's-next']);
    expect([b.ranker?.version, b.session?.version]).toEqual(['r2', 'pinned-s1']);
    expect(fallback.calls).toBe(0);
  });

  it('an arm with any pinned kind not loaded cannot rank: the request falls back', async () => {
    const e = define(experimentV1.Design.DESIGN_AB, {
      surface: rankingV1.Surface.SURFACE_SEARCH,
      arms: [
        experimentV1.Arm.fromPartial({ name: 'a', models: { ranker: 'pinned-r', search_ranker: 'missing' } }),
        experimentV1.Arm.fromPartial({ name: 'b', models: { ranker: 'pinned-r', search_ranker: 'missing' } }),
      ],
    });
    const { router, served, fallback } = setup([e]);
    const r = await router.search({ ...req('u1'), query: 'shoes' });
    expect(r.modelVersion).toBe('fallback');
    expect(fallback.calls).toBe(1);
    expect(served[0]?.experiment?.runs[0]?.error).toBe(
      'ArmNotReadyError: search_ranker missing is not in the model registry',
    );
  });
});
