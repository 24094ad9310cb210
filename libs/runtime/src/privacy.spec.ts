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
