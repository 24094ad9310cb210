import { Rng } from './random';
import { generateShop } from './shop';
import { shoppers } from './shoppers';

const shop = generateShop({ seed: 3, items: 120, users: 60, days: 1 });
const people = shoppers(shop);
const users = people.userIds.slice(0, 20);
const NOISE: Record<string, number> = { better: 0.1, worse: 0.14, twin: 0.1 };

describe('simulated rankers', () => {
  it('err like models by default: the same list for a user every time, another model another list', () => {
    const t = people.traffic(new Rng(1), (arm) => NOISE[arm] ?? 0, {
      modelOf: (arm) => (arm === 'twin' ? 'better' : arm),
    });
    for (const u of users) {
      expect(t.rank('better', u, 10)).toEqual(t.rank('better', u, 10));
      // Arms serving one model rank alike.
      expect(t.rank('twin', u, 10)).toEqual(t.rank('better', u, 10));
    }
    expect(users.filter((u) => t.rank('worse', u, 10).join() !== t.rank('better', u, 10).join()).length).toBe(
      users.length,
    );
  });

  it('with per-request errors, one ranker gives a returning user a different list each time', () => {
    const t = people.traffic(new Rng(1), (arm) => NOISE[arm] ?? 0, { errors: 'request' });
    expect(users.filter((u) => t.rank('better', u, 10).join() !== t.rank('better', u, 10).join()).length).toBe(
      users.length,
    );
  });

  it('less noise is closer to the planted tastes (the better arm shows more attractive items)', () => {
    const t = people.traffic(new Rng(2), (arm) => NOISE[arm] ?? 0);
    const appeal = (arm: string) =>
      users.reduce((sum, u) => sum + t.rank(arm, u, 10).reduce((s, i) => s + people.attraction(u, i), 0), 0);
    expect(appeal('better')).toBeGreaterThan(appeal('worse'));
  });
});
