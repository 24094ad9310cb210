import { fnv1a, hashBatch, hashText, words } from './tokenizer';
import { Bm25Index } from './bm25';

describe('tokenizer/hasher golden vectors (a change here invalidates every trained text model)', () => {
  test('FNV-1a matches the published test vectors', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });
  test('words: lower-case, diacritics stripped, split on non-alphanumerics', () => {
    expect(words('Crème BRÛLÉE, 10.1oz; Shop-Vac')).toEqual(['creme', 'brulee', '10', '1oz', 'shop', 'vac']);
  });
  test.each([
    ['Gorilla Glue', [51759, 53042, 35027, 40699, 25565, 18949, 7836, 53508, 8644, 55452, 40296, 9139, 52235, 17785]],
    [
      'Crème brûlée 2-Pack!',
      [
        58631, 3428, 32227, 35110, 16409, 17077, 39235, 38046, 11973, 30725, 10818, 11361, 17993, 2420, 2440, 18733,
        41179, 4937, 6125, 58256, 6793, 32954, 4577,
      ],
    ],
    ['a', [65120, 26956]],
  ])('hashText(%j)', (text, ids) => {
    expect(Array.from(hashText(text))).toEqual(ids);
  });
  test('maxIds truncates; batches are right-padded with 0', () => {
    expect(hashText('one two three four', { buckets: 100, maxIds: 3 })).toHaveLength(3);
    const { ids, width } = hashBatch(['a', 'gorilla glue']);
    expect(width).toBe(14);
    expect(Array.from(ids.subarray(2, width))).toEqual(Array(12).fill(0));
  });
});

test('BM25 ranks the document with the rarer matching term first and explains matches', () => {
  const idx = new Bm25Index(['red running shoes', 'blue running shoes', 'red wine glass', 'shoes shoes shoes rack']);
  const s = idx.scoreAll('red shoes');
  expect(s[0]).toBeGreaterThan(s[1] as number);
  expect(s[0]).toBeGreaterThan(s[2] as number);
  expect(idx.matchedTerms('Red SHOES', 0)).toEqual(['red', 'shoes']);
  expect(Array.from(idx.scoreAll('unknown'))).toEqual([0, 0, 0, 0]);
});
