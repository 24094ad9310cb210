import { Rng } from './random';
import type { Shop } from './shop';

/**
 * Simulated shoppers for online experiments on a generated shop. A shopper looks down a shown list with
 * falling attention (a position-based click model) and clicks an item with a probability set by the
 * planted taste: high for the subcategories the user prefers (strongest first), low for the rest. A click
 * may lead to an add-to-cart and a purchase. Rankers that know the tastes better earn more clicks: that is
 * the preference an experiment has to detect.
 */

export interface Reaction {
  itemId: string;
  /** 1-based position in the shown list. */
  position: number;
  type: 'click' | 'add_to_cart' | 'purchase';
  quantity: number;
  /** Unit price (add_to_cart, purchase). */
  price: number;
  /** Price x quantity of a purchase; 0 otherwise. */
  revenue: number;
  /** After the impression. */
  delayMs: number;
}

export interface ShopperOptions {
  /** Click probability of an examined item in the user's strongest taste; later tastes get 1/rank of it. */
  tasteClick?: number;
  /** Click probability of an examined item outside the user's tastes. */
  otherClick?: number;
  /** Examination at position k is k^-decay. */
  positionDecay?: number;
  /** P(add to cart | click) and P(purchase | add to cart). */
  cartRate?: number;
  purchaseRate?: number;
  /**
   * Spread (log-normal sigma) of a per-user click propensity with mean 1: some shoppers click far more
   * than others, as in real traffic. This between-user variance is what A/B metrics must average out
   * and what interleaving, comparing both arms inside one request, cancels.
   */
  propensitySpread?: number;
}

export interface TrafficOptions {
  /**
   * How an arm's ranker errs. `model` (the default): as a learned model does, the same way for a user
   * every time it ranks them (its noise is drawn once per model and user, seeded by `modelOf`), so a user
   * who returns sees the same list from the same arm. `request`: fresh noise for every request, so one
   * ranker gives a user a different list each time (the first simulations did this; it makes a worse arm
   * merely more random, not wrong in a way a returning user keeps meeting).
   */
  errors?: 'model' | 'request';
  /** The model an arm serves (arms serving the same model rank alike); the arm's name by default. */
  modelOf?: (arm: string) => string;
}

export interface ShopTraffic {
  users: readonly string[];
  userWeights: readonly number[];
  random: () => number;
  rank(arm: string, userId: string, limit: number): string[];
  react(userId: string, shown: readonly string[]): Reaction[];
}

export interface Shoppers {
  /** Every user id, and each one's relative request rate, in the same order. */
  readonly userIds: readonly string[];
  readonly weights: readonly number[];
  /** The planted click probability of an examined item for a user (the oracle rankers sort by). */
  attraction(userId: string, itemId: string): number;
  /** What a user does with a shown list. */
  react(userId: string, shown: readonly string[], rng: Rng): Reaction[];
  /**
   * The traffic of a simulated experiment on this shop: users drawn by activity, each arm a ranker with its
   * own noise (less noise = closer to the planted tastes = better), shoppers reacting to what they see.
   * Shaped for `simulateExperiment` in `@aisle/experiments`.
   */
  traffic(rng: Rng, noiseOf: (arm: string) => number, opts?: TrafficOptions): ShopTraffic;
  /** A ranked list for a user: items by attraction plus Gaussian noise of the given spread (0 = the oracle). */
  rank(userId: string, limit: number, noise: number, rng: Rng): string[];
}

export function shoppers(shop: Shop, opts: ShopperOptions = {}): Shoppers {
  const tasteClick = opts.tasteClick ?? 0.3;
  const otherClick = opts.otherClick ?? 0.04;
  const decay = opts.positionDecay ?? 0.7;
  const cartRate = opts.cartRate ?? 0.3;
  const purchaseRate = opts.purchaseRate ?? 0.6;
  const items = new Map(shop.items.map((i) => [i.itemId, i]));
  const tastes = new Map(shop.users.map((u) => [u.userId, u.tastes]));
  const spread = opts.propensitySpread ?? 0.8;
  const draws = new Rng(shop.seed ^ 0x5eed);
  const propensity = new Map(
    shop.users.map((u) => [u.userId, Math.exp(spread * draws.normal() - (spread * spread) / 2)]),
  );
  const cache = new Map<string, Float64Array>();
  const userIds = shop.users.map((u) => u.userId);
  // Heavy users come back more: requests are drawn in proportion to sessions per week.
  const weights = shop.users.map((u) => u.sessionsPerWeek);
  const attraction = (userId: string, itemId: string): number => {
    const category = items.get(itemId)?.category;
    const rank = category ? (tastes.get(userId)?.indexOf(category) ?? -1) : -1;
    return rank >= 0 ? tasteClick / (rank + 1) : otherClick;
  };
  const react = (userId: string, shown: readonly string[], rng: Rng): Reaction[] => {
    const out: Reaction[] = [];
    shown.forEach((itemId, i) => {
      const position = i + 1;
      const p = (propensity.get(userId) ?? 1) * position ** -decay * attraction(userId, itemId);
      if (!rng.chance(p)) return;
      const price = items.get(itemId)?.price ?? 0;
      let delayMs = Math.round(rng.range(2, 60) * 1000);
      out.push({ itemId, position, type: 'click', quantity: 0, price: 0, revenue: 0, delayMs });
      if (!rng.chance(cartRate)) return;
      delayMs += Math.round(rng.range(10, 300) * 1000);
      out.push({ itemId, position, type: 'add_to_cart', quantity: 1, price, revenue: 0, delayMs });
      if (!rng.chance(purchaseRate)) return;
      delayMs += Math.round(rng.range(30, 1800) * 1000);
      const quantity = rng.chance(0.8) ? 1 : 2;
      out.push({ itemId, position, type: 'purchase', quantity, price, revenue: price * quantity, delayMs });
    });
    return out;
  };
  const rank = (userId: string, limit: number, noise: number, rng: Rng): string[] => {
    // Top-k by insertion into a short sorted list: the simulations call this for every request.
    let base = cache.get(userId);
    if (!base) cache.set(userId, (base = Float64Array.from(shop.items, (i) => attraction(userId, i.itemId))));
    const top: Array<{ index: number; score: number }> = [];
    base.forEach((w, index) => {
      const score = w + noise * rng.normal();
      if (top.length === limit && score <= (top[top.length - 1] as { score: number }).score) return;
      let at = top.length;
      while (at > 0 && (top[at - 1] as { score: number }).score < score) at--;
      top.splice(at, 0, { index, score });
      if (top.length > limit) top.pop();
    });
    return top.map((t) => (shop.items[t.index] as { itemId: string }).itemId);
  };
  return {
    userIds,
    weights,
    attraction,
    react,
    rank,
    traffic: (rng, noiseOf, how = {}) => {
      const modelOf = how.modelOf ?? ((arm: string) => arm);
      // A model's list for a user, kept: drawn once from the model's own noise for that user.
      const lists = new Map<string, string[]>();
      const modelRank = (arm: string, userId: string, limit: number): string[] => {
        const model = modelOf(arm);
        const key = `${model}\u001f${userId}\u001f${limit}`;
        let list = lists.get(key);
        if (!list)
          lists.set(key, (list = rank(userId, limit, noiseOf(arm), new Rng(hash32(`${model}\u001f${userId}`)))));
        return list;
      };
      return {
        users: userIds,
        userWeights: weights,
        random: () => rng.next(),
        rank: how.errors === 'request' ? (arm, userId, limit) => rank(userId, limit, noiseOf(arm), rng) : modelRank,
        react: (userId, shown) => react(userId, shown, rng),
      };
    },
  };
}

/** FNV-1a of a string: a 32-bit seed. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
