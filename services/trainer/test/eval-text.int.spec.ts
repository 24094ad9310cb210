/**
 * `aisle eval --model text --validation` on a small planted catalog in the amazon-scientific layout: a
 * spec-heavy shop with crowded categories, the kind where Search as served lost to plain BM25 on exact
 * title fragments (a per-category limit on Search, typed words lost to normalization).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateTextEncoder } from '../src/eval-text';

jest.setTimeout(180_000);

const TYPES = [
  { noun: 'PLA Filament', category: 'Industrial & Scientific 3D Printing Filament' },
  { noun: 'Super Glue Gel', category: 'Industrial & Scientific Adhesives Super Glue' },
  { noun: 'Sealing Tape', category: 'Industrial & Scientific Tapes Packing Tape' },
];
const BRANDS = ['Hatchbox', 'Gorilla', 'Sparco', 'Uxcell', 'Tecco', 'Gizmo', 'Loctite', 'Scotch'];
const SPECS = [
  (k: number) => `${10 + k} Gram`,
  (k: number) => `${4 + (k % 5) * 4}-Ounce`,
  (k: number) => `${1 + (k % 3)}.${(k * 7) % 10}5mm`,
  (k: number) => `${3 + (k % 6)} Pieces`,
];
const COLORS = ['Black', 'Clear', 'Brown', 'Gray', 'Blue'];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eval-text-'));
  const text = ['item_id:token\ttext:token_seq'];
  TYPES.forEach((t, ti) => {
    for (let k = 0; k < 30; k++) {
      const brand = BRANDS[(k + ti) % BRANDS.length] as string;
      const spec = (SPECS[(k + ti) % SPECS.length] as (k: number) => string)(k);
      text.push(`i${ti}x${k}\t${brand} ${t.noun} ${spec}, ${COLORS[k % COLORS.length]}. ${t.category}. ${brand}. `);
    }
  });
  writeFileSync(join(dir, `${dir.split('/').pop()}.text`), text.join('\n') + '\n');
  const base = dir.split('/').pop() as string;
  writeFileSync(
    join(dir, `${base}.test.inter`),
    'user_id:token\titem_id_list:token_seq\titem_id:token\n0\ti0x0\ti0x1\n',
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('validation fragments: Search as served keeps up with BM25 and each regression suspect costs', async () => {
  const r = await evaluateTextEncoder({
    dataset: dir,
    seed: 1,
    model: { epochs: 1, dim: 16 },
    trainFragmentsPerItem: 4,
    out: join(dir, 'result.json'),
    validation: true,
    pseudoQueries: 150,
  });
  const ndcg = (prefix: string, queries = 'validation title fragments') =>
    r.rows.find((x) => x.method.startsWith(prefix) && x.queries === queries)?.ndcg10 as number;
  const served = ndcg('search engine, default scorer');
  expect(served).toBeGreaterThanOrEqual(ndcg('BM25') - 0.01);
  expect(ndcg('served, with the per-category limit')).toBeLessThan(served);
  expect(ndcg('served, normalized forms only')).toBeLessThan(served);
  // Spelling from the catalog vocabulary: typos barely cost Search what they cost BM25.
  expect(ndcg('search engine, default scorer', 'same, with typos')).toBeGreaterThan(ndcg('BM25', 'same, with typos'));
});
