import { editDistance, SpellingCorrector } from './spelling';

const vocab = new Map<string, number>([
  ['refrigerator', 12],
  ['external', 30],
  ['fragrance', 8],
  ['hard', 40],
  ['disk', 25],
  ['video', 50],
  ['game', 60],
  ['cable', 20],
  ['table', 90],
]);

test('edit distance counts adjacent transpositions as one edit and caps early', () => {
  expect(editDistance('fragance', 'fragrance')).toBe(1);
  expect(editDistance('recieve', 'receive')).toBe(1);
  expect(editDistance('abc', 'xyzuvw', 2)).toBe(3);
});

test('unknown terms are corrected to the most frequent close catalog term; known terms are left alone', () => {
  const s = new SpellingCorrector(vocab);
  expect(s.suggest('refrigirator')).toBe('refrigerator');
  expect(s.suggest('extenal')).toBe('external');
  expect(s.suggest('fragance')).toBe('fragrance');
  // 'cabel' is one edit from 'cable' and two from 'table': the closer wins even though 'table' is more frequent.
  expect(s.suggest('cabel')).toBe('cable');
  expect(s.suggest('table')).toBeUndefined();
  expect(s.suggest('qqqqqq')).toBeUndefined();
  expect(s.correct(['hardisk', 'table', 'videogame'])).toEqual([
    { from: 'hardisk', to: ['hard', 'disk'] },
    { from: 'videogame', to: ['video', 'game'] },
  ]);
});
