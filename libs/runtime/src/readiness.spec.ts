import { Readiness } from './readiness';

test('the process is ready without process-wide problems; a service also needs none of its own', () => {
  const r = new Readiness();
  const changes: boolean[] = [];
  r.onChange(() => changes.push(r.ready()));
  expect(r.ready()).toBe(true);
  r.set('model', false, { service: 'a.A', reason: 'no model yet' });
  expect([r.ready(), r.ready('a.A'), r.ready('b.B')]).toEqual([true, false, true]);
  r.set('nats', false, { reason: 'NATS connection lost' });
  expect([r.ready(), r.ready('a.A'), r.ready('b.B')]).toEqual([false, false, false]);
  r.set('nats', false, { reason: 'NATS connection lost' }); // unchanged: no event
  r.set('nats', true);
  r.set('model', true, { service: 'a.A' });
  expect([r.ready(), r.ready('a.A')]).toEqual([true, true]);
  expect(r.list()).toEqual([]);
  expect(changes).toEqual([true, false, true, true]);
});
