/**
 * Averages gradients between data-parallel replicas (worker threads) through one SharedArrayBuffer.
 *
 * Each replica computes the gradient of its share of a batch, writes it here with its number of target
 * positions, waits at a barrier, and reads the target-weighted mean of every replica's gradient: the
 * gradient of the whole batch. Every replica then applies the same update to identical weights, so the
 * replicas stay identical without ever sending weights. Two buffers alternate by step parity, so one
 * barrier per step suffices: a replica can only overwrite step s's buffer at step s + 2, after every
 * replica has passed the barrier of step s + 1 and therefore finished reading step s.
 */

const CONTROL_BYTES = 16;

export class ReplicaTimeoutError extends Error {
  override readonly name = 'ReplicaTimeoutError';
}

export class SharedGradientExchange {
  private readonly control: Int32Array;
  private readonly stats: Float64Array;
  private readonly grads: Float32Array;
  private readonly total: number;
  private readonly mean: Float32Array;

  /** Bytes a buffer needs for `replicas` replicas and tensors of `sizes` elements. */
  static byteLength(replicas: number, sizes: readonly number[]): number {
    const total = sizes.reduce((a, n) => a + n, 0);
    return CONTROL_BYTES + 2 * replicas * 2 * 8 + 2 * replicas * total * 4;
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly rank: number,
    private readonly replicas: number,
    private readonly sizes: readonly number[],
    private readonly timeoutMs = 600_000,
  ) {
    this.total = sizes.reduce((a, n) => a + n, 0);
    this.control = new Int32Array(buffer, 0, 4);
    this.stats = new Float64Array(buffer, CONTROL_BYTES, 2 * replicas * 2);
    this.grads = new Float32Array(buffer, CONTROL_BYTES + 2 * replicas * 2 * 8, 2 * replicas * this.total);
    this.mean = new Float32Array(this.total);
  }

  /**
   * Contributes this replica's gradients (`undefined` when its share of the batch was empty) for step
   * `step` and returns the weighted mean over replicas, split back into one array per tensor, with the
   * batch's total target count and mean loss. The arrays are views into a buffer that the next call
   * overwrites.
   */
  allReduce(
    step: number,
    grads: readonly Float32Array[] | undefined,
    targets: number,
    loss: number,
  ): { grads: Float32Array[]; targets: number; loss: number } {
    const parity = step & 1;
    const slot = (r: number) => (parity * this.replicas + r) * this.total;
    const own = slot(this.rank);
    if (grads && targets > 0) {
      let o = own;
      for (const g of grads) {
        this.grads.set(g, o);
        o += g.length;
      }
    }
    this.stats[(parity * this.replicas + this.rank) * 2] = grads ? targets : 0;
    this.stats[(parity * this.replicas + this.rank) * 2 + 1] = loss;
    this.barrier();
    let n = 0;
    let lossSum = 0;
    this.mean.fill(0);
    for (let r = 0; r < this.replicas; r++) {
      const t = this.stats[(parity * this.replicas + r) * 2] as number;
      if (t <= 0) continue;
      n += t;
      lossSum += t * (this.stats[(parity * this.replicas + r) * 2 + 1] as number);
      const base = slot(r);
      for (let i = 0; i < this.total; i++)
        this.mean[i] = (this.mean[i] as number) + t * (this.grads[base + i] as number);
    }
    if (n > 0) for (let i = 0; i < this.total; i++) this.mean[i] = (this.mean[i] as number) / n;
    const out: Float32Array[] = [];
    let o = 0;
    for (const size of this.sizes) {
      out.push(this.mean.subarray(o, o + size));
      o += size;
    }
    return { grads: out, targets: n, loss: n > 0 ? lossSum / n : Number.NaN };
  }

  /** Sense-reversing barrier over Atomics: the last replica to arrive bumps the generation. */
  private barrier(): void {
    const generation = Atomics.load(this.control, 1);
    if (Atomics.add(this.control, 0, 1) === this.replicas - 1) {
      Atomics.store(this.control, 0, 0);
      Atomics.add(this.control, 1, 1);
      Atomics.notify(this.control, 1);
      return;
    }
    while (Atomics.load(this.control, 1) === generation) {
      if (Atomics.wait(this.control, 1, generation, this.timeoutMs) === 'timed-out')
        throw new ReplicaTimeoutError(`replica ${this.rank}: the others did not reach step's barrier in time`);
    }
  }
}
