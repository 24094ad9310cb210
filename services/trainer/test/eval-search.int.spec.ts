/** `aisle eval --model search` end to end on a small planted data set in the crowdflower-search layout. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateSearch } from '../src/eval-search';

jest.setTimeout(240_000);

const TYPES = [
  { en: 'wine rack', zh: '酒架' },
  { en: 'coffee maker', zh: '咖啡机' },
  { en: 'running shoes', zh: '跑步鞋' },
  { en: 'desk lamp', zh: '台灯' },
  { en: 'water bottle', zh: '水瓶' },
  { en: 'phone case', zh: '手机壳' },
];
const BRANDS = ['Acme', 'Zenith', 'Orbit', 'Nova', 'Pioneer'];
const COLORS = ['Black', 'White', 'Red', 'Blue', 'Green'];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'eval-search-'));
  const corpus: string[] = [];
  const qrels: string[] = [];
  const queries: string[] = [];
  const folds: string[] = [];
  let doc = 0;
  TYPES.forEach((t, ti) => {
    const en = `q${ti}en`;
    const zh = `q${ti}zh`;
    queries.push(`${en}\t${t.en}`, `${zh}\t${t.zh}`);
    folds.push(`${en}\t${(ti % 3) + 1}`, `${zh}\t${((ti + 1) % 3) + 1}`);
    for (let k = 0; k < 10; k++) {
      const id = `d${doc++}`;
      const chinese = k % 2 === 1;
      // English titles use the singular where the query has a plural (and the other way round).
      const noun = t.en.endsWith('s') ? t.en.slice(0, -1) : `${t.en}s`;
      const title = chinese
        ? `${BRANDS[k % 5]} ${COLORS[(k + ti) % 5]}${t.zh} ${k + 1}号`
        : `${BRANDS[k % 5]} ${COLORS[(k + ti) % 5]} ${noun}, Model ${ti}${k}`;
      corpus.push(JSON.stringify({ doc_id: id, title, description: k % 4 === 0 ? '' : 'Great for the home.' }));
      qrels.push(`${chinese ? zh : en} 0 ${id} ${k < 5 ? 3 : 2}`);
    }
  });
  writeFileSync(join(dir, 'corpus.jsonl'), corpus.join('\n') + '\n');
  writeFileSync(join(dir, 'queries.tsv'), queries.join('\n') + '\n');
  writeFileSync(join(dir, 'qrels.tsv'), qrels.join('\n') + '\n');
  writeFileSync(join(dir, 'folds.tsv'), folds.join('\n') + '\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('every row is reported over the folds; Chinese queries find Chinese titles; predictions are written', async () => {
  const out = join(dir, 'result.json');
  const predictionsOut = join(dir, 'predictions.jsonl');
  const r = await evaluateSearch({
    dataset: dir,
    seed: 1,
    out,
    predictionsOut,
    encoder: { epochs: 1, dim: 16, pairsPerItem: 3, batchSize: 64 },
    pseudoQueries: 100,
  });
  const row = (prefix: string) => r.rows.find((x) => x.method.replace(/\*/g, '').startsWith(prefix));
  expect(r.folds).toEqual([1, 2, 3]);
  // The reference tokenization sees no words in Chinese text: half the queries find nothing.
  expect(row('BM25')?.ndcg10).toBeLessThan(0.55);
  // Character n-grams find them; plurals meet singulars.
  expect(row('+ analyzer')?.ndcg10).toBeGreaterThan(0.9);
  expect(row('hybrid, learned from the catalog')?.ndcg10).toBeGreaterThan(0.9);
  expect(row('learned, learner chosen on the other folds')?.perFold).toHaveLength(3);
  const lines = readFileSync(predictionsOut, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(12);
  const first = JSON.parse(lines[0] as string) as { qid: string; items: string[] };
  expect(first.qid).toBe('q0en');
  expect(first.items.length).toBeGreaterThan(0);
  expect(first.items.length).toBeLessThanOrEqual(50);
  expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ queries: 12, items: 60 });
});
