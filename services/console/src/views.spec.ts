import { modelsV1 } from '@aisle/contracts';
import type { ServiceHealth } from './api';
import { modelsView, type RegistryPort } from './views';

const version = (name: string, v: string) => modelsV1.ModelPublished.fromPartial({ name, version: v });

describe('modelsView', () => {
  it('lists every kind the registry holds, known ones first, with what each service loaded for the tenant', async () => {
    const stored: Record<string, string[]> = { churn: ['c1'], search_ranker: ['s1'], session: ['x1'], ranker: ['r1'] };
    const registry: RegistryPort = {
      names: async () => Object.keys(stored).sort(),
      versions: async (_tenant, name) => (stored[name] ?? []).map((v) => version(name, v)),
      activeVersion: async (_tenant, name) => stored[name]?.[0] ?? null,
    };
    const ranking: ServiceHealth = {
      service: 'ranking',
      address: 'x',
      status: 'SERVING',
      detail: '',
      models: [
        { tenant: 'shop-a', model: 'ranker', version: 'r1' },
        { tenant: 'shop-b', model: 'ranker', version: 'r9' },
        { tenant: 'shop-a', model: 'session', version: 'x1' },
      ],
    };
    const v = await modelsView(registry, [ranking], 'shop-a');
    expect(v.kinds.map((k) => k.name)).toEqual(['ranker', 'search_ranker', 'session', 'churn']);
    const kind = (name: string) => v.kinds.find((k) => k.name === name);
    expect(kind('ranker')?.live).toEqual([{ service: 'ranking', version: 'r1' }]);
    // Expected to load it, not loaded yet: shown as waiting.
    expect(kind('search_ranker')?.live).toEqual([{ service: 'ranking', version: '' }]);
    // A kind only its /status names (no hard-coded list) is listed with where it is loaded.
    expect(kind('session')?.live).toEqual([{ service: 'ranking', version: 'x1' }]);
    expect(kind('churn')?.live).toEqual([]);
  });
});
