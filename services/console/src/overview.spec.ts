import type { Alert, ServiceHealth } from './api';
import { forTenant, modelsFromStatus, OverviewSampler, type OverviewSources } from './overview';

function fakeSources() {
  const state = {
    seqs: { CLICKSTREAM: 0, CATALOG: 0, EVENTS: 0, DLQ: 0 } as Record<string, number>,
    services: [] as ServiceHealth[],
    alerts: [] as Alert[],
  };
  const sources: OverviewSources = {
    streams: async () =>
      Object.entries(state.seqs).map(([stream, lastSeq]) => ({ stream, messages: lastSeq, lastSeq })),
    consumers: async () => [],
    services: async () => state.services,
    newAlerts: () => state.alerts.splice(0),
  };
  return { state, sources };
}

const svc = (
  status: ServiceHealth['status'],
  models: Record<string, string> = {},
  tenant = 'shop-a',
): ServiceHealth => ({
  service: 'ranking',
  address: 'x',
  status,
  detail: '',
  models: Object.entries(models).map(([model, version]) => ({ tenant, model, version })),
});

describe('OverviewSampler', () => {
  it('turns sequence deltas into rates and keeps a history', async () => {
    const { state, sources } = fakeSources();
    let now = 0;
    const sampler = new OverviewSampler(sources, { intervalMs: 1000, clock: () => now });
    await sampler.sample();
    state.seqs = { CLICKSTREAM: 300, CATALOG: 100, EVENTS: 380, DLQ: 20 };
    now = 2000;
    const s = await sampler.sample();
    expect(s.eventsInPerSecond).toBe(200);
    expect(s.eventsOutPerSecond).toBe(190);
    expect(s.deadLettersPerSecond).toBe(10);
    expect(s.history).toEqual([{ at: 2000, eventsIn: 200, eventsOut: 190, deadLetters: 10 }]);
    expect(s.alerts[0]?.message).toBe('20 new dead letters');
  });

  it('alerts when a service changes health or model version, and passes churn alerts through per tenant', async () => {
    const { state, sources } = fakeSources();
    const sampler = new OverviewSampler(sources, { intervalMs: 1000 });
    state.services = [svc('SERVING', { ranker: 'v1' })];
    await sampler.sample();
    state.services = [svc('UNREACHABLE', {})];
    state.alerts = [{ at: 1, kind: 'churn', severity: 'warning', message: 'u1 at risk', tenant: 'shop-b' }];
    await sampler.sample();
    state.services = [svc('SERVING', { ranker: 'v1' })];
    await sampler.sample();
    state.services = [svc('SERVING', { ranker: 'v2' })];
    const s = await sampler.sample();
    const messages = s.alerts.map((a) => a.message);
    expect(messages).toContain('ranking is UNREACHABLE, was SERVING');
    expect(messages).toContain('ranking is SERVING, was UNREACHABLE');
    expect(messages).toContain('ranking switched ranker of shop-a from v1 to v2');
    expect(forTenant(s, 'shop-a').alerts.map((a) => a.message)).not.toContain('u1 at risk');
    expect(forTenant(s, 'shop-b').alerts.map((a) => a.message)).toContain('u1 at risk');
  });

  it('reads loaded versions per tenant from /status', () => {
    expect(
      modelsFromStatus({
        models: [
          { tenant: 'shop-a', model: 'ranker', version: 'v3' },
          { tenant: 'shop-b', model: 'ranker', version: 'v9' },
          { model: 'text_encoder', version: 't1' },
          { model: 'x' },
        ],
      }),
    ).toEqual([
      { tenant: 'shop-a', model: 'ranker', version: 'v3' },
      { tenant: 'shop-b', model: 'ranker', version: 'v9' },
      { tenant: null, model: 'text_encoder', version: 't1' },
    ]);
    expect(modelsFromStatus({ model: 'v1' })).toEqual([]);
    expect(modelsFromStatus(null)).toEqual([]);
  });

  it('keeps each tenant its own model versions: one never overwrites another', async () => {
    const { state, sources } = fakeSources();
    const sampler = new OverviewSampler(sources, { intervalMs: 1000 });
    state.services = [
      {
        ...svc('SERVING'),
        models: [
          { tenant: 'shop-a', model: 'ranker', version: 'a1' },
          { tenant: 'shop-b', model: 'ranker', version: 'b1' },
        ],
      },
    ];
    await sampler.sample();
    state.services = [
      {
        ...svc('SERVING'),
        models: [
          { tenant: 'shop-a', model: 'ranker', version: 'a1' },
          { tenant: 'shop-b', model: 'ranker', version: 'b2' },
        ],
      },
    ];
    const s = await sampler.sample();
    expect(forTenant(s, 'shop-a').services[0]?.models).toEqual([{ tenant: 'shop-a', model: 'ranker', version: 'a1' }]);
    expect(forTenant(s, 'shop-b').services[0]?.models).toEqual([{ tenant: 'shop-b', model: 'ranker', version: 'b2' }]);
    // shop-b's switch is shop-b's alert; shop-a's unchanged version raises none.
    expect(forTenant(s, 'shop-a').alerts.filter((a) => a.kind === 'model')).toEqual([]);
    expect(forTenant(s, 'shop-b').alerts.map((a) => a.message)).toContain(
      'ranking switched ranker of shop-b from b1 to b2',
    );
  });
});
