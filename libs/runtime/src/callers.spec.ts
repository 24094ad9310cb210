/** Issue #13: the callers file (AISLE_GRPC_CALLERS_FILE) is followed, so callers are added or revoked without a restart. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followCallersFile, readCallersFile } from './callers';

test('a changed callers file applies without a restart; one that no longer parses leaves the callers in force', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aisle-callers-'));
  const file = join(dir, 'callers.json');
  const hash = (t: string) => createHash('sha256').update(t).digest('hex');
  const write = (token: string) =>
    writeFileSync(
      file,
      JSON.stringify({ callers: [{ name: token, token_sha256: hash(token), tenants: ['*'], methods: ['*'] }] }),
    );
  write('old-token');
  const policy = readCallersFile(file);
  const outcomes: Array<{ ok: true } | { ok: false; error: string }> = [];
  const stop = followCallersFile(policy, { intervalMs: 10, onReload: (r) => outcomes.push(r) });
  try {
    expect(policy.identify('Bearer old-token', []).name).toBe('old-token');
    write('new-token');
    for (let i = 0; i < 200 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(outcomes).toEqual([{ ok: true }]);
    expect(() => policy.identify('Bearer old-token', [])).toThrow(/unknown bearer token/);
    expect(policy.identify('Bearer new-token', []).name).toBe('new-token');
    writeFileSync(file, '{"callers": [');
    for (let i = 0; i < 200 && outcomes.length === 1; i++) await new Promise((r) => setTimeout(r, 10));
    const failed = outcomes[1];
    expect(failed?.ok === false && /not JSON/.test(failed.error)).toBe(true);
    expect(policy.identify('Bearer new-token', []).name).toBe('new-token');
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
