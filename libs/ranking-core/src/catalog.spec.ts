import { SearchEngine } from '@aisle/ml';
import { Catalog } from './catalog';
import { ITEMS } from './testing.fixture';

/** Items the catalog's search engine matches lexically (BM25F after query understanding), best first. */
function found(c: Catalog, query: string): string[] {
  const e = c.engine;
  const scores = e.index.bm25f(e.understand(query).terms, e.config.bm25f);
  return [...scores.keys()]
    .filter((d) => (scores[d] as number) > 0)
    .sort((a, b) => (scores[b] as number) - (scores[a] as number))
    .map((d) => e.ids[d] as string);
}

describe('Catalog (in memory, bounded)', () => {
  test('keeps only what ranking reads (no description or attributes, long titles cut); descriptions are indexed', () => {
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
    c.upsert([{ ...ITEMS[1]!, description: 'fizzy lavender ball' }]);
    expect(found(c, 'fizzy')).toEqual(['bomb']);
    // A price update without text leaves the indexed description; a new description replaces it.
    c.upsert([{ ...ITEMS[1]!, price: 8 }]);
    expect(found(c, 'fizzy')).toEqual(['bomb']);
    c.upsert([{ ...ITEMS[1]!, description: 'round' }]);
    expect(found(c, 'fizzy')).toEqual([]);
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
    expect(found(c, 'sponge')).toEqual(['sponge']);
    expect(found(c, 'bomb')).toEqual([]);
  });

  test('categories and brands are shared between items (one string each)', () => {
    const c = new Catalog();
    const a = { ...ITEMS[0]!, category: ['Beauty', 'Bath'].join(' > ') };
    const b = { ...ITEMS[1]!, category: ['Beauty', 'Bath'].join(' > ') };
    c.upsert([a, b]);
    expect(c.get(a.itemId)?.category).toBe(c.get(b.itemId)?.category);
  });

  test('search: the same index as an engine built from scratch over the same items', () => {
    const c = new Catalog();
    c.upsert(ITEMS);
    const fresh = new SearchEngine(
      ITEMS.map((i) => ({ id: i.itemId, title: i.title, brand: i.brand, category: i.category })),
    );
    const q = fresh.understand('bath soaps').terms;
    expect(c.engine.index.bm25f(q, c.engine.config.bm25f)).toEqual(fresh.index.bm25f(q, fresh.config.bm25f));
    expect(found(c, 'bath soaps')[0]).toBe('soap');
    expect(found(c, 'unknown')).toEqual([]);
  });

  test('an upsert re-indexes that item: a renamed item is found by its new title only', () => {
    const c = new Catalog();
    c.upsert(ITEMS);
    c.upsert([{ ...ITEMS.find((i) => i.itemId === 'hammer')!, title: 'Rubber Mallet' }]);
    expect(found(c, 'claw')).toEqual([]);
    expect(found(c, 'mallet')).toEqual(['hammer']);
  });
});
