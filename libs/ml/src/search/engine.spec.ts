import { DEFAULT_ANALYZER } from './analyzer';
import { SearchEngine } from './engine';
import { rm3 } from './expansion';
import { featureMap } from './features';
import { termWeights, FieldIndex } from './field-index';
import { FALLBACK_SEARCH_SCORER, LinearScorer, type SearchScorer } from './ltr';
import { CoClickSynonyms } from './synonyms';

const catalog = [
  { id: 'p1', title: 'Concept Housewares WR-44526 Wall-Mount Wine Rack, Charcoal', description: 'Holds 6 bottles' },
  { id: 'p2', title: 'Wine Glasses, Set of 4', description: 'Crystal glasses for red wine' },
  { id: 'p3', title: 'Mason Jars 8 oz, 12-Pack', description: 'Regular mouth canning jars' },
  { id: 'p4', title: 'Mason Jar Lids', description: 'Fits 8oz and 16oz jars' },
  { id: 'p5', title: 'Samsung 55" Television', description: '4K smart display' },
  { id: 'p6', title: '耐克男子运动鞋 黑色', description: '轻便透气的跑步鞋' },
  { id: 'p7', title: '不锈钢保温杯 500毫升', description: '保温12小时' },
  { id: 'p8', title: 'Refrigerator Water Filter', description: 'Replacement filter for the refrigerator' },
  { id: 'p9', title: 'Wine Rack Cleaning Cloth', description: 'Microfiber cloth for a wine rack' },
];

function top(
  engine: SearchEngine,
  query: string,
  opts: Parameters<SearchEngine['candidates']>[1] = {},
  scorer: SearchScorer = FALLBACK_SEARCH_SCORER,
): string[] {
  const set = engine.candidates(query, opts);
  const scored = set.docs.map((d, i) => ({
    id: engine.ids[d] as string,
    s: scorer.score(set.rows[i] as Float32Array),
  }));
  return scored.sort((a, b) => b.s - a.s).map((x) => x.id);
}

describe('SearchEngine', () => {
  const engine = new SearchEngine(catalog);

  test('units and plurals: "8 ounce mason jar" finds the 8 oz jars first', () => {
    expect(top(engine, '8 ounce mason jar')[0]).toBe('p3');
  });

  test('model numbers: the joined and the split spelling find the item', () => {
    expect(top(engine, 'wr44526')[0]).toBe('p1');
    expect(top(engine, 'WR 44526')[0]).toBe('p1');
  });

  test('Chinese queries find Chinese titles through character n-grams', () => {
    expect(top(engine, '运动鞋')[0]).toBe('p6');
    expect(top(engine, '保温杯')[0]).toBe('p7');
    expect(top(engine, '运动鞋')).not.toContain('p7');
  });

  test('a query typed the way a title is written finds it where normalization rewrote the words', () => {
    const glues = [
      { id: 'g1', title: 'Gorilla Super Glue Gel, 20 Gram', category: 'Adhesives' },
      { id: 'g2', title: 'Loctite Super Glue Gel Control', category: 'Adhesives' },
      { id: 'g4', title: 'Hatchbox PLA Filament 2.85mm, 1 kg Spool', category: 'Filament' },
      { id: 'g3', title: 'Hatchbox PLA Filament 1.75mm, 1 kg Spool', category: 'Filament' },
    ];
    const typed = new SearchEngine(glues);
    expect(top(typed, 'super glue gel gram')[0]).toBe('g1');
    // The title's own tokens, as a plain tokenizer splits them (`1.75mm` -> `1`, `75mm`).
    expect(top(typed, 'pla filament 1 75mm')[0]).toBe('g3');
    // Normalized forms alone lose the typed words: `gram` became `g`, `1.75mm` became `1.75`, `mm`.
    const normalizedOnly = new SearchEngine(glues, { analyzer: { ...DEFAULT_ANALYZER, exact: false } });
    expect(top(normalizedOnly, 'super glue gel gram')[0]).toBe('g2');
    expect(top(normalizedOnly, 'pla filament 1 75mm')[0]).toBe('g4');
    expect(engine.understand('gram').terms.has('gram')).toBe(true);
  });

  test('a misspelled query is corrected from the catalog vocabulary, and says so', () => {
    const u = engine.understand('refrigirator filter');
    expect(u.corrections).toEqual([{ from: 'refrigirator', to: ['refrigerator'] }]);
    expect(top(engine, 'refrigirator filter')[0]).toBe('p8');
  });

  test('category intent: the product type a query names outranks items that merely mention it', () => {
    const set = engine.candidates('wine rack');
    const rows = new Map(set.docs.map((d, i) => [engine.ids[d], featureMap(set.rows[i] as Float32Array)]));
    expect(engine.understand('wine rack').head).toBe('rack');
    expect(rows.get('p1')?.head_match).toBe(1);
    expect(rows.get('p9')?.head_match).toBe(0);
    // On lexical evidence alone the shorter title that merely mentions a wine rack comes first.
    expect(top(engine, 'wine rack', {}, LinearScorer.of({ bm25f_norm: 1 }))[0]).toBe('p9');
    expect(top(engine, 'wine rack', {}, LinearScorer.of({ bm25f_norm: 1, head_match: 1 }))[0]).toBe('p1');
  });

  test('semantic neighbours join the candidates and carry their similarity', () => {
    const set = engine.candidates('tv', { semantic: new Map([['p5', 0.8]]) });
    const i = set.docs.indexOf(engine.ids.indexOf('p5'));
    expect(i).toBeGreaterThanOrEqual(0);
    expect(featureMap(set.rows[i] as Float32Array).semantic).toBeCloseTo(0.8);
  });

  test('co-click synonyms: "tv" learns "television" from what shoppers chose', () => {
    const syn = new CoClickSynonyms([
      { query: 'tv', title: 'Samsung 55" Television', gain: 1 },
      { query: 'big tv', title: 'LG Television 65"', gain: 3 },
    ]);
    expect([...syn.expand(['tv']).keys()]).toContain('television');
    expect(top(engine, 'tv')).not.toContain('p5');
    expect(top(engine, 'tv', { synonyms: syn })[0]).toBe('p5');
  });
});

test('BM25F weighs a title match above the same match in a description', () => {
  const ix = new FieldIndex([
    { id: 'a', title: 'lamp', description: 'a red shade' },
    { id: 'b', title: 'red lamp', description: 'a shade' },
  ]);
  const w = { title: 3, description: 1, brand: 1, category: 1 };
  const b = { title: 0.75, description: 0.75, brand: 0.75, category: 0.75 };
  const s = ix.bm25f(termWeights('red'), { k1: 1.2, weight: w, b });
  expect(s[1]).toBeGreaterThan(s[0] as number);
  // BM25 of one field is Robertson's formula: idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg)).
  const t = ix.bm25(termWeights('red'), 'title');
  const idf = Math.log(1 + (2 - 2 + 0.5) / (2 + 0.5));
  expect(t[1]).toBeCloseTo((idf * 2.2) / (1 + 1.2 * (0.25 + (0.75 * 2) / 1.5)), 5);
});

test('RM3 adds the terms the top items share and keeps the original terms at weight 1', () => {
  const ix = new FieldIndex([
    { id: 'a', title: 'mason jar canning' },
    { id: 'b', title: 'mason jar canning lid' },
    { id: 'c', title: 'glass jar' },
    { id: 'd', title: 'garden hose' },
    ...Array.from({ length: 20 }, (_, i) => ({ id: `x${i}`, title: `filler item ${i}` })),
  ]);
  const q = termWeights('mason');
  const expanded = rm3(
    ix,
    q,
    ix.bm25f(q, {
      k1: 1.2,
      weight: { title: 1, description: 1, brand: 1, category: 1 },
      b: { title: 0.75, description: 0.75, brand: 0.75, category: 0.75 },
    }),
  );
  expect(expanded.get('mason')).toBeCloseTo(1);
  expect(expanded.get('canning')).toBeGreaterThan(0);
  expect(expanded.has('hose')).toBe(false);
});

test('items are added, replaced and deleted in place; statistics follow', () => {
  const engine = new SearchEngine(catalog.slice(0, 4));
  expect(engine.size).toBe(4);
  expect(top(engine, 'television')).toEqual([]);
  engine.upsert([catalog[4] as (typeof catalog)[number]]);
  expect(top(engine, 'television')[0]).toBe('p5');
  // A new word becomes a spelling suggestion; a replaced title is searched by its new text only.
  expect(engine.understand('televsion').corrections).toEqual([{ from: 'televsion', to: ['television'] }]);
  engine.upsert([{ id: 'p5', title: 'Samsung Monitor', description: '' }]);
  expect(top(engine, 'television')).toEqual([]);
  expect(top(engine, 'monitor')[0]).toBe('p5');
  engine.delete(['p5', 'p1']);
  expect(engine.size).toBe(3);
  expect(top(engine, 'monitor')).toEqual([]);
  expect(engine.understand('monitr').corrections).toEqual([]);
  // Freed slots are reused, and idf counts only live items.
  engine.upsert([{ id: 'n1', title: 'Desk Lamp' }]);
  expect(engine.ids.filter(Boolean).sort()).toEqual(['n1', 'p2', 'p3', 'p4']);
  expect(engine.index.idf('lamp')).toBeCloseTo(Math.log(1 + (4 - 1 + 0.5) / 1.5));
});
