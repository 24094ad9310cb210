import { LruCache } from './lru';
import { isValidTenant, requestTenant } from './tenant';

test('the least recently used entry goes first, and the size never passes the cap', () => {
  const c = new LruCache<string, number>(3);
  c.set('a', 1);
  c.set('b', 2);
  c.set('c', 3);
  expect(c.get('a')).toBe(1); // a is now the most recent
  c.set('d', 4);
  expect(c.get('b')).toBeUndefined();
  expect([c.get('a'), c.get('c'), c.get('d')]).toEqual([1, 3, 4]);
  for (let i = 0; i < 1000; i++) c.set(`k${i}`, i);
  expect(c.size).toBe(3);
  expect(() => new LruCache(0)).toThrow(RangeError);
});

test('tenant names: pattern and length', () => {
  expect(isValidTenant('shop-1.eu_west')).toBe(true);
  expect(isValidTenant('x'.repeat(64))).toBe(true);
  expect(isValidTenant('x'.repeat(65))).toBe(false);
  expect(isValidTenant('_shop')).toBe(false);
  expect(isValidTenant('a b')).toBe(false);
  expect(requestTenant('')).toBe('default');
  expect(() => requestTenant('a/b', 'events[0].tenant')).toThrow('events[0].tenant: must be 1-64');
});
