import { mulberry32 } from '../eval/random';
import { Bm25Index } from './bm25';

const VOCAB = ['red', 'blue', 'shoes', 'running', 'wine', 'glass', 'rack', 'oak', 'soap', 'lavender', 'matte'];

function randomText(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 6);
  return Array.from({ length: n }, () => VOCAB[Math.floor(rand() * VOCAB.length)]).join(' ');
}

describe('Bm25Index updated in place', () => {
  test('after random adds, replacements and deletes it scores exactly like an index built from scratch', () => {
    const rand = mulberry32(7);
    const idx = new Bm25Index();
    const docs = new Map<number, string>();
    for (let step = 0; step < 3000; step++) {
      const doc = Math.floor(rand() * 60);
      if (rand() < 0.25) {
        idx.delete(doc);
        docs.delete(doc);
      } else {
        const text = randomText(rand);
        idx.set(doc, text);
        docs.set(doc, text);
      }
    }
    // The same documents, numbered densely, in a fresh index.
    const order = [...docs.keys()].sort((a, b) => a - b);
    const fresh = new Bm25Index(order.map((d) => docs.get(d) as string));
    expect(idx.size).toBe(docs.size);
    for (const q of ['red shoes', 'oak', 'lavender soap matte', 'unknown words']) {
      const a = idx.scoreAll(q);
      const b = fresh.scoreAll(q);
      order.forEach((d, i) => expect(a[d]).toBeCloseTo(b[i] as number, 4));
      for (let d = 0; d < a.length; d++) if (!docs.has(d)) expect(a[d]).toBe(0);
      const top = idx.top(q, 5);
      const expected = order
        .map((d, i) => ({ doc: d, score: b[i] as number }))
        .filter((x) => x.score > 0)
        .sort((x, y) => y.score - x.score || x.doc - y.doc)
        .slice(0, 5);
      expect(top.map((t) => t.doc)).toEqual(expected.map((t) => t.doc));
    }
  });

  test('a replaced document matches only its new terms; a deleted one matches nothing', () => {
    const idx = new Bm25Index(['red running shoes', 'blue wine glass']);
    idx.set(0, 'oak rack');
    expect(idx.matchedTerms('red oak', 0)).toEqual(['oak']);
    expect(idx.top('red', 10)).toEqual([]);
    idx.delete(1);
    expect(idx.top('wine', 10)).toEqual([]);
    expect(idx.size).toBe(1);
    idx.set(5, 'wine rack');
    expect(idx.top('rack', 10).map((t) => t.doc)).toEqual([0, 5]); // equal scores: lower number first
  });

  test('the term dictionary shrinks with the documents (it only holds live words)', () => {
    const idx = new Bm25Index();
    for (let i = 0; i < 1000; i++) {
      idx.set(0, `unique${i} shoes`);
    }
    expect((idx as unknown as { terms: Map<string, number> }).terms.size).toBe(2);
  });
});
