import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDataset, buildNumericDataset, type SequenceDataset } from './sequences';

/** SASRec's format: one "user item" pair per line, grouped by user, in time order (Video.txt). */
export function readSasrecPairs(path: string, name = path): SequenceDataset {
  const byUser = new Map<string, number[]>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const [u, i] = t.split(/\s+/);
    if (u === undefined || i === undefined) throw new Error(`${path}: bad line '${t.slice(0, 80)}'`);
    const list = byUser.get(u) ?? [];
    list.push(Number(i));
    byUser.set(u, list);
  }
  return buildNumericDataset(name, byUser);
}

export function writeSasrecPairs(path: string, d: SequenceDataset): void {
  const lines: string[] = [];
  d.sequences.forEach((s, u) => s.forEach((i) => lines.push(`${d.users[u]} ${d.itemIds[i]}`)));
  writeFileSync(path, lines.join('\n') + '\n');
}

/** S3-Rec's format: "user item item ..." per line (Beauty.txt). */
export function readUserPerLine(path: string, name = path): SequenceDataset {
  const rows: Array<[string, number[]]> = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const [u, ...items] = t.split(/\s+/);
    rows.push([u as string, items.map(Number)]);
  }
  return buildNumericDataset(name, rows);
}

export function writeUserPerLine(path: string, d: SequenceDataset): void {
  writeFileSync(
    path,
    d.sequences.map((s, u) => [d.users[u], ...Array.from(s, (i) => d.itemIds[i])].join(' ')).join('\n') + '\n',
  );
}

export interface RecboleDataset extends SequenceDataset {
  /** Item text by external item id (title. category path. brand.), when a .text file exists. */
  readonly texts: Map<string, string>;
}

function recboleRows(path: string): Array<Record<string, string>> {
  const [header, ...lines] = readFileSync(path, 'utf8').split('\n');
  const cols = (header ?? '').split('\t').map((c) => c.split(':')[0] ?? c);
  return lines
    .filter((l) => l.trim())
    .map((l) => Object.fromEntries(l.split('\t').map((v, k) => [cols[k] ?? String(k), v])));
}

/**
 * RecBole atomic files as used by UniSRec (`<name>.test.inter` rows "user item_id_list item_id", where
 * the list is the full history before the target), plus `<name>.text` and `<name>.item2index`.
 * Item ids are the external ones (ASINs) when item2index exists.
 */
export function readRecbole(dir: string, base: string): RecboleDataset {
  const test = recboleRows(join(dir, `${base}.test.inter`));
  let names: Map<string, string> | undefined;
  try {
    names = new Map(
      readFileSync(join(dir, `${base}.item2index`), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
          const [asin, idx] = l.split('\t');
          return [idx ?? '', asin ?? ''];
        }),
    );
  } catch {
    names = undefined;
  }
  const byUser: Array<[string, string[]]> = test.map((r) => {
    const history = (r['item_id_list'] ?? '').split(' ').filter(Boolean);
    const items = [...history, r['item_id'] ?? ''].map((i) => names?.get(i) ?? i);
    return [r['user_id'] ?? '', items];
  });
  const texts = new Map<string, string>();
  try {
    for (const r of recboleRows(join(dir, `${base}.text`))) texts.set(r['item_id'] ?? '', (r['text'] ?? '').trim());
  } catch {
    // no text file
  }
  return { ...buildDataset(base, byUser), texts };
}

export function writeRecboleTest(path: string, d: SequenceDataset): void {
  const rows = d.sequences.map(
    (s, u) =>
      `${d.users[u]}\t${Array.from(s.subarray(0, s.length - 1), (i) => d.itemIds[i]).join(' ')}\t${d.itemIds[s[s.length - 1] as number]}`,
  );
  writeFileSync(path, ['user_id:token\titem_id_list:token_seq\titem_id:token', ...rows].join('\n') + '\n');
}

export interface Transaction {
  customer: string;
  /** Epoch ms (UTC midnight of the purchase day). */
  at: number;
  quantity: number;
  amount: number;
}

/** CDNOW_master.txt: "customer_id date number_of_cds dollar_value" (date as YYYYMMDD), optional header. */
export function readCdnow(path: string): Transaction[] {
  const out: Transaction[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 4 || !/^\d{8}$/.test(parts[1] ?? '')) continue;
    const [c, d, q, a] = parts as [string, string, string, string];
    out.push({
      customer: c,
      at: Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8))),
      quantity: Number(q),
      amount: Number(a),
    });
  }
  return out;
}

export function writeCdnow(path: string, txs: readonly Transaction[]): void {
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
  writeFileSync(
    path,
    [
      'customer_id date number_of_cds dollar_value',
      ...txs.map((t) => `${t.customer} ${day(t.at)} ${t.quantity} ${t.amount}`),
    ].join('\n') + '\n',
  );
}

/** Aisle's own events (as the store returns them), to sequences of item interactions per user. */
export function fromEvents(
  name: string,
  events: Iterable<{ userId: string; itemId: string; type: string; occurredAt: number }>,
  opts: { types?: readonly string[]; collapseRepeats?: boolean } = {},
): SequenceDataset {
  const types = new Set(opts.types ?? ['view', 'add_to_cart', 'purchase']);
  const byUser = new Map<string, Array<{ itemId: string; at: number }>>();
  for (const e of events) {
    if (!e.itemId || !types.has(e.type)) continue;
    const list = byUser.get(e.userId) ?? [];
    list.push({ itemId: e.itemId, at: e.occurredAt });
    byUser.set(e.userId, list);
  }
  const rows: Array<[string, string[]]> = [];
  for (const [u, list] of [...byUser].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    list.sort((a, b) => a.at - b.at);
    const items: string[] = [];
    for (const x of list)
      if (!(opts.collapseRepeats ?? true) || items[items.length - 1] !== x.itemId) items.push(x.itemId);
    rows.push([u, items]);
  }
  return buildDataset(name, rows);
}

/** Picks the reader from a data set folder's files. */
export function readDatasetDir(dir: string): SequenceDataset {
  const files = readdirSync(dir);
  const inter = files.find((f) => f.endsWith('.test.inter'));
  if (inter) return readRecbole(dir, inter.replace('.test.inter', ''));
  const txt = files.find((f) => f.endsWith('.txt') && f !== 'SOURCE.txt' && !f.startsWith('CDNOW'));
  if (!txt) throw new Error(`${dir}: no sequence file found (expected *.txt or *.test.inter)`);
  const first = readFileSync(join(dir, txt), 'utf8').split('\n', 1)[0]?.trim().split(/\s+/) ?? [];
  return first.length === 2 ? readSasrecPairs(join(dir, txt), txt) : readUserPerLine(join(dir, txt), txt);
}
