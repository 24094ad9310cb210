// Bundles the browser app (web/) into dist/web: one script, one stylesheet and index.html, with Chart.js
// inside. Runs at build time; nothing is fetched when the console serves the page.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(here, 'dist', 'web');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(here, 'web', 'src', 'main.ts') },
  bundle: true,
  format: 'iife',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  outdir: out,
  logLevel: 'warning',
  legalComments: 'linked',
});
await build({
  entryPoints: { app: join(here, 'web', 'src', 'styles.css') },
  bundle: true,
  minify: true,
  outdir: out,
  logLevel: 'warning',
});
copyFileSync(join(here, 'web', 'index.html'), join(out, 'index.html'));
