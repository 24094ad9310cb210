import { numItems, trainPart, type SequenceDataset } from '../data/sequences';
import type { SyncSequenceScorer } from './evaluate';

/**
 * MostPop: popularity counted over `countOver` interactions. 'all' is the published PopRec protocol
 * (it counts the held-out items too); 'train' counts training parts only.
 */
export function mostPop(d: SequenceDataset, countOver: 'all' | 'train' = 'all'): SyncSequenceScorer {
  const counts = new Float32Array(numItems(d) + 1);
  for (const s of d.sequences)
    for (const i of countOver === 'all' ? s : trainPart(s)) counts[i] = (counts[i] as number) + 1;
  return { name: `MostPop(${countOver})`, scoreBatch: (histories) => histories.map(() => counts) };
}

/**
 * Item co-visitation: how often item j followed item i within `window` steps in training sequences
 * (weighted 1/gap), summed over the user's last `lookback` items (weighted 1/recency), with popularity
 * as a tie-breaker.
 */
export function coVisitation(
  d: SequenceDataset,
  opts: { window?: number; lookback?: number } = {},
): SyncSequenceScorer {
  const window = opts.window ?? 3;
  const lookback = opts.lookback ?? 3;
  const n = numItems(d);
  const next = new Map<number, Map<number, number>>();
  const pop = new Float32Array(n + 1);
  for (const full of d.sequences) {
    const s = trainPart(full);
    for (let a = 0; a < s.length; a++) {
      const i = s[a] as number;
      pop[i] = (pop[i] as number) + 1;
      for (let g = 1; g <= window && a + g < s.length; g++) {
        const j = s[a + g] as number;
        if (j === i) continue;
        let m = next.get(i);
        if (!m) next.set(i, (m = new Map<number, number>()));
        m.set(j, (m.get(j) ?? 0) + 1 / g);
      }
    }
  }
  let maxPop = 1;
  for (const p of pop) maxPop = Math.max(maxPop, p);
  return {
    name: 'CoVisitation',
    scoreBatch: (histories) =>
      histories.map((h) => {
        const scores = new Float32Array(n + 1);
        for (let i = 1; i <= n; i++) scores[i] = ((pop[i] as number) / maxPop) * 1e-3;
        for (let r = 0; r < lookback && r < h.length; r++) {
          const m = next.get(h[h.length - 1 - r] as number);
          if (!m) continue;
          for (const [j, c] of m) scores[j] = (scores[j] as number) + c / (r + 1);
        }
        return scores;
      }),
  };
}
