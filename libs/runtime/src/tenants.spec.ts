import { parseTenantList, parseTenantSettings, TenantDirectory, TenantNotDeclaredError, usesModel } from './tenants';

test('AISLE_TENANTS names tenants with optional rate limits; bad names and limits are refused', () => {
  expect(parseTenantList('default, shop-b=200')).toEqual([
    { name: 'default', settings: { rateLimit: 0 } },
    { name: 'shop-b', settings: { rateLimit: 200 } },
  ]);
  expect(() => parseTenantList('bad tenant')).toThrow(/not a tenant name/);
  expect(() => parseTenantList('shop=fast')).toThrow(/whole number/);
  expect(() => parseTenantList(' , ')).toThrow(/declares no tenant/);
  expect(parseTenantSettings('')).toEqual({ rateLimit: 0 });
  expect(parseTenantSettings('{"rateLimit": 5}')).toEqual({ rateLimit: 5 });
  expect(() => parseTenantSettings('{"rateLimit": -1}')).toThrow(/rateLimit/);
  expect(() => parseTenantSettings('[1]')).toThrow(/JSON object/);
});

test("a tenant's rules and models come from the bucket, checked; a typo is refused, not ignored", () => {
  expect(
    parseTenantSettings(
      '{"rateLimit": 50, "rules": {"maxPerCategory": 1, "retentionBoost": 0.2, "churnRiskThreshold": 0.7}, "models": ["sasrec", "ranker"]}',
    ),
  ).toEqual({
    rateLimit: 50,
    rules: { maxPerCategory: 1, retentionBoost: 0.2, churnRiskThreshold: 0.7 },
    models: ['sasrec', 'ranker'],
  });
  expect(usesModel(parseTenantSettings('{"models": ["sasrec"]}'), 'ranker')).toBe(false);
  expect(usesModel(parseTenantSettings('{}'), 'ranker')).toBe(true);
  expect(() => parseTenantSettings('{"ratelimit": 5}')).toThrow(/unknown setting 'ratelimit'/);
  expect(() => parseTenantSettings('{"rules": {"maxPerCat": 1}}')).toThrow(/rules: unknown setting 'maxPerCat'/);
  expect(() => parseTenantSettings('{"rules": {"maxPerCategory": 1.5}}')).toThrow(/rules.maxPerCategory/);
  expect(() => parseTenantSettings('{"rules": {"churnRiskThreshold": 2}}')).toThrow(/churnRiskThreshold/);
  expect(() => parseTenantSettings('{"models": ["gpt"]}')).toThrow(/model kinds/);
  const dir = new TenantDirectory(parseTenantList('a'));
  const changed: string[] = [];
  dir.onSettings((t) => changed.push(t));
  dir.setDynamic('a', parseTenantSettings('{"rules": {"maxPerCategory": 1}}'));
  expect(dir.settings('a')?.rules?.maxPerCategory).toBe(1);
  dir.setDynamic('a', undefined);
  expect(dir.settings('a')).toEqual({ rateLimit: 0 });
  expect(changed).toEqual(['a', 'a']);
});

test('undeclared tenants are refused; bucket tenants come and go, fixed ones stay; listeners hear changes', () => {
  const dir = new TenantDirectory(parseTenantList('a,b'));
  const changes: unknown[] = [];
  dir.onChange((c) => changes.push(c));
  expect(dir.require('a')).toBe('a');
  expect(() => dir.require('c')).toThrow(TenantNotDeclaredError);
  dir.setDynamic('c', { rateLimit: 0 });
  expect(dir.list()).toEqual(['a', 'b', 'c']);
  dir.setDynamic('a', undefined); // a fixed tenant cannot be withdrawn through the bucket
  dir.setDynamic('c', undefined);
  expect(dir.has('a')).toBe(true);
  expect(dir.has('c')).toBe(false);
  expect(changes).toEqual([
    { added: ['c'], removed: [] },
    { added: [], removed: ['c'] },
  ]);
});

test("a tenant over its rate limit is refused while another tenant's calls pass; tokens refill with time", () => {
  let now = 0;
  const dir = new TenantDirectory(parseTenantList('busy=10,calm'), () => now);
  let refused = 0;
  for (let i = 0; i < 30; i++) {
    try {
      dir.admit('busy');
    } catch {
      refused++;
    }
    dir.admit('calm'); // no limit: never throws
  }
  expect(refused).toBe(20);
  expect(() => dir.admit('busy', 1)).toThrow(/over its limit of 10/);
  now += 500;
  for (let i = 0; i < 5; i++) dir.admit('busy');
  expect(() => dir.admit('busy')).toThrow(/over its limit/);
});
