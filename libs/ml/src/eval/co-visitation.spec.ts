import { buildNumericDataset } from '../data/sequences';
import {
  PairCounts,
  sequencesBefore,
  tuneCoVisitation,
  WindowedCoVisitation,
  DEFAULT_CO_VISITATION,
} from './co-visitation';
import { rankOfScore, topIndices } from './topk';

test('pair counts: forward pairs within the window weighted by gap, backward ones when asked', () => {
  const seqs = [Int32Array.from([1, 2, 3]), Int32Array.from([1, 3])];
  const forward = new PairCounts(seqs, 3, 2, (g) => 1 / g);
  const row = new Map<number, number>();
  forward.forEach(1, (j, v) => row.set(j, v));
  expect(row).toEqual(
    new Map([
      [2, 1],
      [3, 1.5],
    ]),
  );
  const both = new PairCounts(seqs, 3, 1, () => 1, 0.5);
  const back = new Map<number, number>();
  both.forEach(3, (j, v) => back.set(j, v));
  expect(back).toEqual(
    new Map([
      [2, 0.5],
      [1, 0.5],
    ]),
  );
});

test('windowed co-visitation scores what followed the recent items; tuning starts from the defaults', async () => {
  // Every user walks 1 -> 2 -> 3 -> 4 -> 5; test items are 5, validation items 4.
  const d = buildNumericDataset(
    't',
    Array.from({ length: 30 }, (_, u) => [`u${u}`, [1, 2, 3, 4, 5]] as [string, number[]]),
  );
  const counted = sequencesBefore(d, 'valid');
  expect(Array.from(counted[0] as Int32Array)).toEqual([1, 2, 3]);
  const m = new WindowedCoVisitation(counted, 5, DEFAULT_CO_VISITATION);
  const s = m.scores(Int32Array.from([1, 2]));
  expect(topIndices(s, 1).items[0]).toBe(3);
  expect(m.neighbors(2, 5).map((n) => n.item)).toEqual([3]);
  const tuned = await tuneCoVisitation(d, { kind: 'full' });
  expect(tuned.trials.length).toBeGreaterThan(5);
  expect(tuned.trials[0]?.config).toEqual(DEFAULT_CO_VISITATION);
  expect(tuned.trials.every((t) => t.validation.users === 30)).toBe(true);
});

test('topIndices selects the k best (ties by index) and rankOfScore counts what is above', () => {
  const s = Float32Array.from([99, 0.5, 3, 3, -1, 7]);
  const t = topIndices(s, 3);
  expect(Array.from(t.items)).toEqual([5, 2, 3]);
  expect(Array.from(t.scores)).toEqual([7, 3, 3]);
  expect(Array.from(topIndices(s, 10).items)).toEqual([5, 2, 3, 1, 4]);
  expect(rankOfScore(s, 3)).toBe(1);
});
