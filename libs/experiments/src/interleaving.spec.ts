import { assignArm, uniformHash, unitOf, type AssignmentPlan } from './assignment';
import { interleavingOutcome, NO_TEAM, requestCoin, teamDraft } from './interleaving';

const ids = (...xs: string[]) => xs.map((itemId) => ({ itemId }));

describe('assignment', () => {
  const plan: AssignmentPlan = {
    tenant: 'default',
    salt: 'exp-1',
    holdout: 0,
    arms: [
      { name: 'control', share: 0.5 },
      { name: 'treatment', share: 0.5 },
    ],
  };

  it('is sticky: the same unit always gets the same arm, on any replica', () => {
    for (let u = 0; u < 50; u++) {
      const unit = unitOf(`user-${u}`, '');
      expect(assignArm(plan, unit)).toBe(assignArm({ ...plan }, unit));
    }
  });

  it('uses the session for anonymous visitors and nothing without either id', () => {
    expect(unitOf('', 'sess-1')).toBe('s:sess-1');
    expect(unitOf('u1', 'sess-1')).toBe('u:u1');
    expect(assignArm(plan, '')).toBeUndefined();
  });

  it('splits by the configured shares and re-assigns only when the salt changes', () => {
    const skewed: AssignmentPlan = {
      ...plan,
      arms: [
        { name: 'a', share: 0.2 },
        { name: 'b', share: 0.8 },
      ],
    };
    const n = 20_000;
    let a = 0;
    let moved = 0;
    let movedBySalt = 0;
    for (let u = 0; u < n; u++) {
      const unit = unitOf(`user-${u}`, '');
      if (assignArm(skewed, unit) === 'a') a++;
      if (assignArm(plan, unit) !== assignArm({ ...plan, tenant: 'default' }, unit)) moved++;
      if (assignArm(plan, unit) !== assignArm({ ...plan, salt: 'exp-1-v2' }, unit)) movedBySalt++;
    }
    // Binomial(20000, 0.2): sd = 57; 5 sd either way.
    expect(Math.abs(a - 0.2 * n)).toBeLessThan(5 * 57);
    expect(moved).toBe(0);
    // A new salt re-draws every unit: about half land elsewhere.
    expect(Math.abs(movedBySalt - n / 2)).toBeLessThan(5 * 71);
  });

  it('keeps a holdout out, independently of the arm split', () => {
    const withHoldout = { ...plan, holdout: 0.1 };
    let held = 0;
    let changed = 0;
    for (let u = 0; u < 10_000; u++) {
      const unit = unitOf(`user-${u}`, '');
      const arm = assignArm(withHoldout, unit);
      if (arm === undefined) held++;
      else if (arm !== assignArm(plan, unit)) changed++;
    }
    expect(Math.abs(held - 1000)).toBeLessThan(5 * 30);
    expect(changed).toBe(0);
  });

  it('hashes to a uniform number in [0, 1)', () => {
    const draws = Array.from({ length: 10_000 }, (_, i) => uniformHash('s', String(i)));
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const mean = draws.reduce((a, b) => a + b) / draws.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.015);
  });
});

describe('team-draft interleaving', () => {
  it('alternates picks, the coin deciding who starts each round', () => {
    const a = { name: 'A', items: ids('a1', 'a2', 'a3', 'a4') };
    const b = { name: 'B', items: ids('b1', 'b2', 'b3', 'b4') };
    const aFirst = teamDraft(a, b, 4, () => true);
    expect(aFirst.map((x) => `${x.itemId}:${x.team}`)).toEqual(['a1:A', 'b1:B', 'a2:A', 'b2:B']);
    const coins = [false, true];
    const mixed = teamDraft(a, b, 4, (round) => coins[round] as boolean);
    expect(mixed.map((x) => x.itemId)).toEqual(['b1', 'a1', 'a2', 'b2']);
  });

  it('shows a shared item once, on the team that picked it first; the other takes its next item', () => {
    // Radlinski et al. 2008, figure 1 style: both rankers put d1 first.
    const a = { name: 'A', items: ids('d1', 'd2', 'd3', 'd4') };
    const b = { name: 'B', items: ids('d1', 'd3', 'd5', 'd2') };
    const merged = teamDraft(a, b, 4, () => true);
    expect(merged.map((x) => `${x.itemId}:${x.team}`)).toEqual(['d1:A', 'd3:B', 'd2:A', 'd5:B']);
    expect(new Set(merged.map((x) => x.itemId)).size).toBe(merged.length);
  });

  it('keeps team sizes within one at every prefix', () => {
    const coin = requestCoin('salt', 'req-42');
    const a = { name: 'A', items: ids(...Array.from({ length: 30 }, (_, i) => `x${i}`)) };
    const b = { name: 'B', items: ids(...Array.from({ length: 30 }, (_, i) => `x${29 - i}`)) };
    const merged = teamDraft(a, b, 20, coin);
    expect(merged).toHaveLength(20);
    let da = 0;
    for (const x of merged) {
      da += x.team === 'A' ? 1 : -1;
      expect(Math.abs(da)).toBeLessThanOrEqual(1);
    }
  });

  it('stops the draft when a team runs out and fills the rest with uncredited items', () => {
    const a = { name: 'A', items: ids('a1') };
    const b = { name: 'B', items: ids('b1', 'b2', 'b3') };
    const merged = teamDraft(a, b, 4, () => true);
    expect(merged.map((x) => `${x.itemId}:${x.team}`)).toEqual(['a1:A', 'b1:B', `b2:${NO_TEAM}`, `b3:${NO_TEAM}`]);
  });

  it('flips a fair, reproducible coin per request', () => {
    let heads = 0;
    for (let r = 0; r < 10_000; r++) if (requestCoin('s', `req-${r}`)(0)) heads++;
    expect(Math.abs(heads - 5000)).toBeLessThan(5 * 50);
    expect(requestCoin('s', 'req-1')(3)).toBe(requestCoin('s', 'req-1')(3));
  });

  it('scores a request by the team with more credited events', () => {
    expect(interleavingOutcome(2, 1)).toBe('a');
    expect(interleavingOutcome(0, 1)).toBe('b');
    expect(interleavingOutcome(1, 1)).toBe('tie');
    expect(interleavingOutcome(0, 0)).toBe('none');
  });
});
