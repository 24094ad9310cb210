/** Binary classification metrics. `scores`: higher = more likely positive. */

/** ROC AUC by ranks (Mann-Whitney U), ties averaged. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number),
  );
  const ranks = new Float64Array(scores.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k] as number] = r;
    i = j + 1;
  }
  let pos = 0;
  let sumPos = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]) {
      pos++;
      sumPos += ranks[i] as number;
    }
  }
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (sumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Average precision (area under the precision-recall curve, step-wise). */
export function prAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => (scores[b] as number) - (scores[a] as number),
  );
  const pos = Array.from(labels).filter(Boolean).length;
  if (pos === 0) return Number.NaN;
  let tp = 0;
  let ap = 0;
  for (let k = 0; k < idx.length; k++) {
    if (labels[idx[k] as number]) {
      tp++;
      ap += tp / (k + 1);
    }
  }
  return ap / pos;
}

export function f1At(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  threshold: number,
): { f1: number; precision: number; recall: number } {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = (scores[i] as number) >= threshold;
    if (p && labels[i]) tp++;
    else if (p) fp++;
    else if (labels[i]) fn++;
  }
  const precision = tp / Math.max(1, tp + fp);
  const recall = tp / Math.max(1, tp + fn);
  return { f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0, precision, recall };
}

/** The threshold maximizing F1 (chosen on training data, then applied to test data). */
export function bestF1Threshold(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const candidates = [...new Set(Array.from(scores).map((s) => Math.round(s * 1000) / 1000))].sort((a, b) => a - b);
  let best = 0.5;
  let bestF1 = -1;
  for (const t of candidates) {
    const { f1 } = f1At(scores, labels, t);
    if (f1 > bestF1) {
      bestF1 = f1;
      best = t;
    }
  }
  return best;
}

export function brier(probs: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < probs.length; i++) s += ((probs[i] as number) - (labels[i] ? 1 : 0)) ** 2;
  return s / Math.max(1, probs.length);
}
