// Runs the built local-stack demo (deploy/local); `npm run demo` bootstraps and builds first.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const r = spawnSync(process.execPath, [join(root, 'deploy', 'local', 'dist', 'demo.js'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
