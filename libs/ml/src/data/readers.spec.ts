import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fromEvents,
  readCdnow,
  readRecbole,
  readSasrecPairs,
  readUserPerLine,
  writeCdnow,
  writeRecboleTest,
  writeSasrecPairs,
  writeUserPerLine,
} from './readers';
import { buildNumericDataset, historyAndTarget, trainPart } from './sequences';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'aisle-readers-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const d = buildNumericDataset('t', [
  ['1', [1, 2, 3, 4]],
  ['2', [5, 3, 2]],
  ['3', [6]],
]);

test('SASRec pairs round-trip', () => {
  writeSasrecPairs(join(dir, 'p.txt'), d);
  const back = readSasrecPairs(join(dir, 'p.txt'));
  expect(back.users).toEqual(d.users);
  expect(back.sequences.map((s) => Array.from(s))).toEqual(d.sequences.map((s) => Array.from(s)));
});

test('user-per-line round-trip', () => {
  writeUserPerLine(join(dir, 'u.txt'), d);
  expect(readUserPerLine(join(dir, 'u.txt')).sequences.map((s) => Array.from(s))).toEqual([
    [1, 2, 3, 4],
    [5, 3, 2],
    [6],
  ]);
});

test('RecBole test file round-trip keeps external ids and order', () => {
  writeRecboleTest(join(dir, 'X.test.inter'), d);
  const back = readRecbole(dir, 'X');
  expect(back.users).toEqual(['1', '2', '3']);
  expect(back.sequences.map((s) => Array.from(s, (i) => back.itemIds[i]))).toEqual([
    ['1', '2', '3', '4'],
    ['5', '3', '2'],
    ['6'],
  ]);
});

test('CDNOW round-trip', () => {
  const txs = [
    { customer: '00001', at: Date.UTC(1997, 0, 1), quantity: 1, amount: 11.77 },
    { customer: '00002', at: Date.UTC(1997, 0, 12), quantity: 2, amount: 20 },
  ];
  writeCdnow(join(dir, 'c.txt'), txs);
  expect(readCdnow(join(dir, 'c.txt'))).toEqual(txs);
});

test('Aisle events become per-user item sequences in time order, repeats collapsed', () => {
  const ds = fromEvents('e', [
    { userId: 'b', itemId: 'x', type: 'view', occurredAt: 3 },
    { userId: 'a', itemId: 'y', type: 'view', occurredAt: 2 },
    { userId: 'a', itemId: 'x', type: 'view', occurredAt: 1 },
    { userId: 'a', itemId: 'y', type: 'add_to_cart', occurredAt: 4 },
    { userId: 'a', itemId: '', type: 'search', occurredAt: 5 },
  ]);
  expect(ds.users).toEqual(['a', 'b']);
  expect(ds.sequences.map((s) => Array.from(s, (i) => ds.itemIds[i]))).toEqual([['x', 'y'], ['x']]);
});

test('leave-one-out split', () => {
  const s = Int32Array.from([1, 2, 3, 4]);
  expect(Array.from(trainPart(s))).toEqual([1, 2]);
  expect(historyAndTarget(s, 'valid')).toEqual({ history: Int32Array.from([1, 2]), target: 3 });
  expect(historyAndTarget(s, 'test')).toEqual({ history: Int32Array.from([1, 2, 3]), target: 4 });
});
