// Entry for `npm test` and `npm run demo`: bootstrap (pnpm, nats-server, dependencies, build), then run.
import { spawnSync } from 'node:child_process';
import { bootstrap, root } from './bootstrap.mjs';

const [what, ...rest] = process.argv.slice(2);
const steps = {
  test: [['pnpm', ['run', '--silent', 'check', ...rest]]],
  demo: [['node', ['scripts/demo.mjs', ...rest]]],
};
if (!what || !steps[what]) {
  process.stderr.write('usage: node scripts/run.mjs test|demo [args]\n');
  process.exit(2);
}
try {
  // The tests drive Chromium (console); the demo needs it only to take screenshots (--once).
  bootstrap({ forTests: what === 'test', withChromium: rest.includes('--once') });
} catch (err) {
  process.stderr.write(`[bootstrap] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
for (const [cmd, args] of steps[what]) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: process.env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
