import { evaluateSessions } from './session-eval';
import {
  decodeSessionArtifact,
  encodeSessionArtifact,
  sessionArtifactFromSidecar,
  sessionArtifactSidecar,
  SessionArtifactError,
} from './session-artifact';
import { buildSessionModel, DEFAULT_SESSION_MODEL, ServingSessionModel, tuneSessionModel } from './session-model';
import { Popularity, Repeats, SequentialRules, SessionKnn, SessionRecommender } from './session-models';
import { ScoreAccumulator } from './scores';
import { internSessions, sessionCases, sessionsFromEvents, validationSplit } from './sessions';
import { mulberry32 } from '../eval/random';

const knnCfg = { ...DEFAULT_SESSION_MODEL.knn, neighbors: 10, recencyDecay: 0 };

test('score accumulator: sparse add, top-k with tie-break, reset', () => {
  const acc = new ScoreAccumulator(10);
  acc.add(3, 1);
  acc.add(5, 2);
  acc.add(3, 1);
  acc.add(7, 2);
  expect(acc.size).toBe(3);
  expect(acc.top(2)).toEqual([3, 5]);
  const pop = Float64Array.from({ length: 10 }, (_, i) => (i === 7 ? 9 : 0));
  expect(acc.top(3, pop)).toEqual([7, 3, 5]);
  acc.reset();
  expect(acc.size).toBe(0);
  expect(acc.top(5)).toEqual([]);
});

test('sequential rules score what followed the last item, nearer steps weighing more', () => {
  const sr = new SequentialRules([Int32Array.from([1, 2, 3]), Int32Array.from([1, 3])], 4, { steps: 2 });
  const acc = new ScoreAccumulator(5);
  sr.scoreInto(Int32Array.from([4, 1]), acc);
  // 1 -> 2 (gap 1) once, 1 -> 3 gap 2 (0.5) and gap 1 (1).
  expect(acc.scores[2]).toBeCloseTo(1);
  expect(acc.scores[3]).toBeCloseTo(1.5);
  expect(acc.top(2)).toEqual([3, 2]);
});

test('session kNN recommends what similar sessions did next, and repeats score the session itself', () => {
  const sessions = [
    Int32Array.from([1, 2, 3]),
    Int32Array.from([1, 2, 3]),
    Int32Array.from([4, 5, 6]),
    Int32Array.from([4, 5, 7]),
  ];
  const knn = new SessionKnn(sessions, 7, knnCfg);
  const acc = new ScoreAccumulator(8);
  knn.scoreInto(Int32Array.from([1, 2]), acc);
  expect(acc.top(3)).toContain(3);
  expect(acc.scores[6]).toBe(0);
  acc.reset();
  knn.scoreInto(Int32Array.from([4, 5]), acc);
  expect(acc.scores[6]).toBeGreaterThan(0);
  expect(acc.scores[3]).toBe(0);
  acc.reset();
  new Repeats({ positionDecay: 2 }).scoreInto(Int32Array.from([9 % 8, 2]), acc);
  expect(acc.top(2)).toEqual([2, 1]);
});

/** A planted log: items come in fixed chains; a session walks a chain from a random start. */
function plantedLog(n: number, seed: number): Int32Array[] {
  const rand = mulberry32(seed);
  const chains = Array.from({ length: 30 }, (_, c) => Array.from({ length: 8 }, (_, k) => 1 + c * 8 + k));
  return Array.from({ length: n }, () => {
    const chain = chains[Math.floor(rand() * chains.length)] as number[];
    const start = Math.floor(rand() * 4);
    const len = 2 + Math.floor(rand() * 4);
    return Int32Array.from(chain.slice(start, start + len));
  });
}

test('on a planted log the tuned session model finds the next item far above popularity', () => {
  const log = plantedLog(3000, 3);
  const numItems = 240;
  const split = validationSplit(log, 0.1);
  expect(split.fit).toHaveLength(2700);
  const tuned = tuneSessionModel(split.fit, split.cases.slice(0, 200), numItems, { deadline: Date.now() + 20_000 });
  expect(tuned.trials.length).toBeGreaterThan(5);
  expect(tuned.trials.every((t) => t.validation.cases === 200)).toBe(true);
  const model = buildSessionModel(tuned.best, log, numItems);
  const test = sessionCases(plantedLog(300, 4));
  const ours = evaluateSessions(model.recommender, test);
  const pop = evaluateSessions(new SessionRecommender(model.popularity, model.popularity, numItems), test);
  expect(ours.p20).toBeGreaterThan(90);
  expect(ours.mrr20).toBeGreaterThan(40);
  expect(pop.p20).toBeLessThan(30);
  expect(new Popularity(log, numItems).order.length).toBeGreaterThan(20);
});

test('a session model travels as one binary artifact and serves the same answers by item id', () => {
  const log = plantedLog(500, 8);
  const itemIds = ['', ...Array.from({ length: 240 }, (_, i) => `sku-${i + 1}`)];
  const spec = { ...DEFAULT_SESSION_MODEL, knn: { ...DEFAULT_SESSION_MODEL.knn, neighbors: 20 } };
  const bytes = encodeSessionArtifact({ spec, itemIds, sessions: log });
  const back = decodeSessionArtifact(bytes);
  expect(back.spec).toEqual(spec);
  expect(back.sessions.map((s) => Array.from(s))).toEqual(log.map((s) => Array.from(s)));
  const direct = buildSessionModel(spec, log, 240).recommender.recommend(Int32Array.from([9, 10]), 5);
  const served = new ServingSessionModel(back).recommend(['sku-9', 'sku-10', 'not-in-catalog'], 5);
  expect(served.map((s) => s.itemId)).toEqual(direct.map((i) => `sku-${i}`));
  expect(served[0]?.score).toBeGreaterThan(0);
  expect(() => decodeSessionArtifact(bytes.subarray(0, bytes.length - 4))).toThrow(SessionArtifactError);
  const corrupt = bytes.slice();
  corrupt[corrupt.length - 1] = 0x7f;
  expect(() => decodeSessionArtifact(corrupt)).toThrow(/outside the vocabulary/);
  // Through the registry: a JSON sidecar carrying the same bytes.
  const sidecar = JSON.parse(JSON.stringify(sessionArtifactSidecar(back))) as Record<string, unknown>;
  expect(sidecar['sessions']).toBe(500);
  expect(new ServingSessionModel(sessionArtifactFromSidecar(sidecar)).recommend(['sku-9', 'sku-10'], 5)).toEqual(
    served,
  );
  expect(() => sessionArtifactFromSidecar({ features: [] })).toThrow(SessionArtifactError);
});

test('shop events become sessions: per user and session id, cut by a silence, repeats in a row counted once', () => {
  const at = (min: number) => Date.UTC(2026, 0, 1) + min * 60_000;
  const e = (userId: string, sessionId: string, itemId: string, min: number, type = 'view') => ({
    userId,
    sessionId,
    itemId,
    type,
    occurredAt: at(min),
  });
  const sessions = sessionsFromEvents([
    e('b', 's2', 'x', 5),
    e('a', 's1', 'p', 0),
    e('a', 's1', 'q', 1),
    e('a', 's1', 'q', 2, 'add_to_cart'),
    e('a', 's1', '', 3, 'search'),
    e('a', 's1', 'r', 4),
    e('b', 's2', 'y', 6),
    e('a', 's1', 'z', 100), // after 96 minutes of silence: a session of its own (one item: dropped)
    e('c', '', 'u', 7),
    e('c', '', 'v', 8),
    e('d', 's4', 'w', 9), // one item: dropped
  ]);
  expect(sessions).toEqual([
    ['p', 'q', 'r'],
    ['x', 'y'],
    ['u', 'v'],
  ]);
  const interned = internSessions(sessions);
  expect(interned.itemIds).toEqual(['', 'p', 'q', 'r', 'x', 'y', 'u', 'v']);
  expect(internSessions([['q', 'new', 'r']], interned.itemIds).sessions.map((s) => Array.from(s))).toEqual([[2, 3]]);
});
