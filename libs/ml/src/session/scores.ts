/**
 * Sparse scores over a dense item range: a reusable dense array plus the list of touched items, so a
 * query costs what it touches, not the catalog size.
 */
export class ScoreAccumulator {
  readonly scores: Float64Array;
  private readonly marked: Uint8Array;
  private touchedList: Int32Array;
  private count = 0;

  constructor(size: number) {
    this.scores = new Float64Array(size);
    this.marked = new Uint8Array(size);
    this.touchedList = new Int32Array(1024);
  }

  add(item: number, value: number): void {
    if (!this.marked[item]) {
      this.marked[item] = 1;
      if (this.count === this.touchedList.length) {
        const grown = new Int32Array(this.touchedList.length * 2);
        grown.set(this.touchedList);
        this.touchedList = grown;
      }
      this.touchedList[this.count++] = item;
    }
    this.scores[item] = (this.scores[item] as number) + value;
  }

  get size(): number {
    return this.count;
  }

  touched(): Int32Array {
    return this.touchedList.subarray(0, this.count);
  }

  max(): number {
    let m = 0;
    for (let k = 0; k < this.count; k++) m = Math.max(m, this.scores[this.touchedList[k] as number] as number);
    return m;
  }

  /** Adds `weight` x this accumulator's scores (divided by `scale`) into `into`. */
  addTo(into: ScoreAccumulator, weight: number, scale = 1): void {
    if (weight === 0 || scale <= 0) return;
    for (let k = 0; k < this.count; k++) {
      const i = this.touchedList[k] as number;
      into.add(i, (weight * (this.scores[i] as number)) / scale);
    }
  }

  /**
   * The `k` best touched items, best first; ties broken by `tieBreak` (higher first), then by index.
   */
  top(k: number, tieBreak?: ArrayLike<number>): number[] {
    const best: number[] = [];
    const better = (a: number, b: number) => {
      const sa = this.scores[a] as number;
      const sb = this.scores[b] as number;
      if (sa !== sb) return sa > sb;
      const ta = tieBreak ? (tieBreak[a] as number) : 0;
      const tb = tieBreak ? (tieBreak[b] as number) : 0;
      return ta !== tb ? ta > tb : a < b;
    };
    for (let n = 0; n < this.count; n++) {
      const i = this.touchedList[n] as number;
      if (best.length === k && !better(i, best[k - 1] as number)) continue;
      let p = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push(i);
      while (p > 0 && better(i, best[p - 1] as number)) {
        best[p] = best[p - 1] as number;
        p--;
      }
      best[p] = i;
    }
    return best;
  }

  reset(): void {
    for (let k = 0; k < this.count; k++) {
      const i = this.touchedList[k] as number;
      this.scores[i] = 0;
      this.marked[i] = 0;
    }
    this.count = 0;
  }
}
