import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from './logger';
import { ForgottenUsers, type ForgetMarkers } from './privacy';

/** The store's port over plain maps (the SQLite and MongoDB adapters pass the same contract test). */
function markers(): ForgetMarkers & { all: Map<string, number> } {
  const all = new Map<string, number>();
  return {
    all,
    mark: async (tenant, key, at) => {
      all.set(`${tenant}/${key}`, Math.max(at, all.get(`${tenant}/${key}`) ?? 0));
    },
    getMany: async (tenant, keys) =>
      new Map(keys.flatMap((k) => (all.has(`${tenant}/${k}`) ? [[k, all.get(`${tenant}/${k}`) as number]] : []))),
    list: async (tenant) =>
      new Map([...all].filter(([k]) => k.startsWith(`${tenant}/`)).map(([k, v]) => [k.slice(tenant.length + 1), v])),
  };
}

test("a forgotten user's events up to the request are dropped; later ones, other users' and other tenants' are kept", async () => {
  const store = markers();
  const users = new ForgottenUsers('k1', store);
  await users.mark('shop', 'gone', 1_000);
  const ev = (tenant: string, userId: string, occurredAt: number) => ({ tenant, userId, occurredAt });
  const dropped = await users.dropped([
    ev('shop', 'gone', 999),
    ev('shop', 'gone', 1_000),
    ev('shop', 'gone', 1_001), // came back after the request
    ev('shop', 'stays', 10),
    ev('other', 'gone', 10), // the same id in another tenant is another shopper
    undefined, // an invalid input
  ]);
  expect([...dropped]).toEqual([0, 1]);
  // The marker holds a keyed hash: not the id, and a different key gives a different name.
  expect([...store.all.keys()].join()).not.toContain('gone');
  expect(new ForgottenUsers('k2', store).keyOf('shop', 'gone')).not.toBe(users.keyOf('shop', 'gone'));
  const test = await users.forgottenIn('shop');
  expect([test('gone', 1_000), test('gone', 1_001), test('stays', 0)]).toEqual([true, false, false]);
});

test('the key comes from AISLE_FORGET_KEY_FILE: production refuses to run without one, or with a weak one', () => {
  const logger = memoryLogger();
  const dir = mkdtempSync(join(tmpdir(), 'aisle-forget-key-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const strong = 'q0Yc2v3lQm1bN8rJ6x5tWk9sA4dF7gH2jK3lZ0pO1uI=';
  const open = (forgetKeyFile: string | undefined, deployment = 'production') =>
    ForgottenUsers.open({ forgetKeyFile, deployment }, markers(), logger);
  // The key, not the file's trailing newline, names the user.
  expect(open(file('key', `${strong}\n`)).keyOf('shop', 'u')).toBe(
    new ForgottenUsers(strong, markers()).keyOf('shop', 'u'),
  );
  expect(() => open(undefined)).toThrow(/AISLE_FORGET_KEY_FILE is required when AISLE_ENV=production/);
  expect(() => open(file('short', 'secret\n'))).toThrow(/AISLE_FORGET_KEY_FILE holds 6 characters, fewer than 32/);
  expect(() => open(file('template', 'CHANGE_ME\n'))).toThrow(/AISLE_FORGET_KEY_FILE holds a placeholder/);
  // Development: the built-in key, said out loud.
  expect(open(undefined, 'development').keyOf('shop', 'u')).toMatch(/^[\w-]{43}$/);
  expect(logger.lines.map((l) => l['msg'])).toEqual([
    'AISLE_FORGET_KEY_FILE is not set: forget markers use the built-in key (development only)',
  ]);
});
