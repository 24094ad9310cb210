import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSearchDataset, SearchDatasetError } from './search-dataset';

describe('readSearchDataset', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'search-ds-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('reads corpus, queries, qrels and folds; optional fields stay optional', () => {
    writeFileSync(
      join(dir, 'corpus.jsonl'),
      '{"doc_id": "1", "title": "Red Shoe", "description": "leather"}\n{"doc_id": 2, "title": "Cap", "brand": "Acme", "category": "Hats > Caps"}\n',
    );
    writeFileSync(join(dir, 'queries.tsv'), 'q1\tred shoes\nq2\tacme cap\n');
    writeFileSync(join(dir, 'qrels.tsv'), 'q1 0 1 3\nq2 0 2 2\n');
    writeFileSync(join(dir, 'folds.tsv'), 'q1\t1\nq2\t2\n');
    const d = readSearchDataset(dir);
    expect(d.docs).toEqual([
      { id: '1', title: 'Red Shoe', description: 'leather', brand: undefined, category: undefined },
      { id: '2', title: 'Cap', description: undefined, brand: 'Acme', category: 'Hats > Caps' },
    ]);
    expect(d.queries).toEqual([
      { qid: 'q1', text: 'red shoes' },
      { qid: 'q2', text: 'acme cap' },
    ]);
    expect(d.qrels.get('q1')?.get('1')).toBe(3);
    expect([...d.folds]).toEqual([
      ['q1', 1],
      ['q2', 2],
    ]);
  });

  test('a shop without judgements or folds still loads (folds from a hash of the query id)', () => {
    writeFileSync(join(dir, 'corpus.jsonl'), '{"doc_id": "1", "title": "Red Shoe"}\n');
    writeFileSync(join(dir, 'queries.tsv'), 'a\tshoe\nb\tred\n');
    const d = readSearchDataset(dir);
    expect(d.qrels.size).toBe(0);
    for (const f of d.folds.values()) expect(f).toBeGreaterThanOrEqual(1);
  });

  test('bad lines are named', () => {
    writeFileSync(join(dir, 'corpus.jsonl'), '{"title": "no id"}\n');
    writeFileSync(join(dir, 'queries.tsv'), 'a\tshoe\n');
    expect(() => readSearchDataset(dir)).toThrow(/corpus.jsonl:1: doc_id missing/);
    expect(() => readSearchDataset(join(dir, 'nope'))).toThrow(SearchDatasetError);
  });
});
