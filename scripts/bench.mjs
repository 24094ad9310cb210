// `pnpm bench <name>`: runs test/dist/bench/<name>.bench.js (built by `pnpm build`). Prints a table and
// writes bench-results/<name>.json.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dir = join(root, 'test', 'dist', 'bench');
const available = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.bench.js'))
      .map((f) => f.replace('.bench.js', ''))
  : [];
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: pnpm bench <${available.join('|') || 'run pnpm build first'}>\n`);
  process.exit(2);
}
const r = spawnSync(process.execPath, [join(dir, `${name}.bench.js`), ...args], {
  stdio: 'inherit',
  cwd: root,
  env: process.env,
});
process.exit(r.status ?? 1);
