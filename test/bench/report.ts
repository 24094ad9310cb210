import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@aisle/testkit';

export type Row = Record<string, string | number>;

/** Prints rows as an aligned table and writes them, with machine facts, to bench-results/<name>.json. */
export function report(name: string, rows: Row[], extra: Record<string, unknown> = {}): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const fmt = (v: string | number | undefined) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 3 : 1)) : (v ?? '');
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(`\n${name}\n${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of rows) process.stdout.write(line(cols.map((c) => fmt(r[c]))) + '\n');
  const dir = join(repoRoot, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const cpu = cpus()[0];
  writeFileSync(
    file,
    JSON.stringify(
      {
        name,
        at: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpu?.model, node: process.version },
        rows,
        ...extra,
      },
      null,
      2,
    ),
  );
  process.stdout.write(`\nwrote ${file}\n`);
  return file;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
