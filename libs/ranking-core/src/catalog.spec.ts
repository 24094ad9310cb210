import { Bm25Index, itemText } from '@aisle/ml';
import { Catalog } from './catalog';
import { ITEMS } from './testing.fixture';

describe('Catalog (in memory, bounded)', () => {
  test('keeps only what ranking reads: no description or attributes, long titles cut', () => {
    const c = new Catalog({ maxTitleLength: 20 });
    const upsert = {
      ...ITEMS[0]!,
      title: 'A very long title that goes on and on',
      description: 'x'.repeat(20_000),
      attributes: { colour: 'red' },
    };
    c.upsert([upsert]);
    const kept = c.get('soap');
    expect(kept).toEqual({
      itemId: 'soap',
      title: 'A very long title th',
      category: 'Beauty > Bath',
      brand: 'Lumina',
      price: 5,
      inStock: true,
    });
    expect(Object.keys(kept ?? {})).not.toContain('description');
  });

  test('refuses new items beyond maxItems, still updates the ones it holds, and frees room on remove', () => {
    const c = new Catalog({ maxItems: 3 });
    expect(c.upsert(ITEMS.slice(0, 5))).toEqual({ added: 3, updated: 0, refused: 2 });
    expect(c.size).toBe(3);
    expect(c.get(ITEMS[3]!.itemId)).toBeUndefined();
    expect(c.upsert([{ ...ITEMS[0]!, price: 99 }])).toEqual({ added: 0, updated: 1, refused: 0 });
    expect(c.get(ITEMS[0]!.itemId)?.price).toBe(99);
    expect(c.remove(ITEMS[1]!.itemId)).toBe(true);
    expect(c.upsert([ITEMS[3]!])).toEqual({ added: 1, updated: 0, refused: 0 });
    expect(c.search('sponge', 5).map((m) => m.itemId)).toEqual(['sponge']);
    expect(c.search('bomb', 5)).toEqual([]);
  });

  test('categories and brands are shared between items (one string each)', () => {
    const c = new Catalog();
    const a = { ...ITEMS[0]!, category: ['Beauty', 'Bath'].join(' > ') };
    const b = { ...ITEMS[1]!, category: ['Beauty', 'Bath'].join(' > ') };
    c.upsert([a, b]);
    expect(c.get(a.itemId)?.category).toBe(c.get(b.itemId)?.category);
  });

  test('search: BM25 over the item text, normalized to the best match, with matched terms', () => {
    const c = new Catalog();
    c.upsert(ITEMS);
    const hits = c.search('bath soap', 3);
    expect(hits[0]).toEqual({ itemId: 'soap', score: 1, terms: ['bath', 'soap'] });
    expect(hits.every((h) => h.score > 0 && h.score <= 1)).toBe(true);
    // The same scores as an index built from scratch over the shared item text.
    const fresh = new Bm25Index(ITEMS.map(itemText));
    const s = fresh.scoreAll('bath soap');
    const max = Math.max(...s);
    for (const h of hits)
      expect(h.score).toBeCloseTo((s[ITEMS.findIndex((i) => i.itemId === h.itemId)] as number) / max, 5);
    expect(c.search('unknown', 3)).toEqual([]);
  });

  test('an upsert re-indexes that item: a renamed item is found by its new title only', () => {
    const c = new Catalog();
    c.upsert(ITEMS);
    c.upsert([{ ...ITEMS.find((i) => i.itemId === 'hammer')!, title: 'Rubber Mallet' }]);
    expect(c.search('claw', 5).map((m) => m.itemId)).toEqual([]);
    expect(c.search('mallet', 5).map((m) => m.itemId)).toEqual(['hammer']);
  });
});
