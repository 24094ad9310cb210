import { tf } from './backend';

/**
 * Differentiable ops that TF.js's wasm backend lacks or runs slowly (see docs/ml.md):
 * - wasm has no UnsortedSegmentSum kernel, so the gradient of `tf.gather` throws: lookups here get a
 *   scatter-add backward on a Float32Array;
 * - wasm `matMul` with transpose flags is 4-20x slower than on pre-transposed inputs, and autodiff uses
 *   the flags: dense layers here transpose explicitly.
 */

type GradResult = {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
};

// tf.customGrad's typing mixes inputs and the save function in one rest parameter.
function customGrad<A extends tf.Tensor[]>(
  fn: (...args: [...A, tf.GradSaveFunc]) => GradResult,
): (...inputs: A) => tf.Tensor {
  return tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]);
}

/** Rows of `table` at `ids` (any shape), shape [...ids.shape, dim]. Backward: scatter-add. */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const idsShape = ids.shape;
  const flat = ids.reshape([-1]) as tf.Tensor1D;
  const [rows, dim] = table.shape;
  const op = customGrad<[tf.Tensor]>((t, save) => {
    save([flat]);
    return {
      value: tf.gather(t as tf.Tensor2D, flat).reshape([...idsShape, dim]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const idx = (saved[0] as tf.Tensor).dataSync();
        const g = (dy as tf.Tensor).dataSync();
        const out = new Float32Array(rows * dim);
        for (let k = 0; k < idx.length; k++) {
          const dst = (idx[k] as number) * dim;
          const src = k * dim;
          for (let c = 0; c < dim; c++) out[dst + c] = (out[dst + c] as number) + (g[src + c] as number);
        }
        return [tf.tensor2d(out, [rows, dim])];
      },
    };
  });
  return op(table);
}

/** x [n, k] x w [k, m] with a backward that never uses matMul's transpose flags. */
export function matMul(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = customGrad<[tf.Tensor, tf.Tensor]>((a, b, save) => {
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        return [tf.matMul(g, tf.transpose(sb)), tf.matMul(tf.transpose(sa), g)];
      },
    };
  });
  return op(x, w) as tf.Tensor2D;
}

/** Batched a [..., n, k] x b [..., k, m] (same batch dims) with flag-free backward. */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const perm = (t: tf.Tensor) => {
    const r = t.rank;
    return [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
  };
  const op = customGrad<[tf.Tensor, tf.Tensor]>((x, y, save) => {
    save([x, y]);
    return {
      value: tf.matMul(x, y),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sy] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        return [tf.matMul(g, tf.transpose(sy, perm(sy))), tf.matMul(tf.transpose(sx, perm(sx)), g)];
      },
    };
  });
  return op(a, b);
}

/**
 * Softmax cross-entropy of logits h [n, d] x w^T (w [c, d]) against `targets` (row indices of w),
 * averaged over rows. `skipFirst` leaves row 0 of w (padding) out of the softmax.
 *
 * The [n, c] matrix dominates the cost, so it is touched as little as possible: the forward keeps the
 * softmax P; the backward never builds a one-hot matrix, using
 *   dh = (P w - w[targets]) / n   and   dw = ((h^T P)^T - scatter_add(targets, h)) / n,
 * and never transposes the [n, c] matrix (wasm matMul with transpose flags is ~10x slower).
 */
export function softmaxCrossEntropy(
  h: tf.Tensor2D,
  w: tf.Tensor2D,
  targets: Int32Array,
  skipFirst = false,
  /** Added to every row's logits (a constant per column, e.g. the log-Q correction); no gradient. */
  columnBias?: Float32Array,
): tf.Scalar {
  const n = h.shape[0];
  const [rows, dim] = w.shape;
  const first = skipFirst ? 1 : 0;
  const c = rows - first;
  const flatPicks = Int32Array.from(targets, (t, k) => k * c + (t - first));
  const op = customGrad<[tf.Tensor, tf.Tensor]>((hh, ww, save) => {
    const wc = (skipFirst ? tf.slice(ww as tf.Tensor2D, [1, 0], [c, dim]) : ww) as tf.Tensor2D;
    // The fused softmax kernel is ~2.5x faster on wasm than max/sub/exp/sum as separate passes.
    const logits = tf.matMul(hh as tf.Tensor2D, tf.transpose(wc));
    const p = tf.softmax(columnBias ? tf.add(logits, tf.tensor1d(columnBias)) : logits);
    const picked = tf.gather(tf.reshape(p, [-1]), tf.tensor1d(flatPicks, 'int32'));
    const loss = tf.div(tf.neg(tf.sum(tf.log(tf.maximum(picked, 1e-30)))), n) as tf.Scalar;
    // `save` clones what it keeps (a full copy of P, ~0.5 s per step on wasm): keep P by reference and
    // free it in the backward pass instead. This op is for training only; its gradient always runs.
    tf.keep(p);
    save([hh, wc]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sh, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
        const sp = p as tf.Tensor2D;
        const scale = tf.div(dy as tf.Scalar, n);
        const targetRows = Int32Array.from(targets, (t) => t - first);
        const dh = tf.mul(tf.sub(tf.matMul(sp, sw), tf.gather(sw, tf.tensor1d(targetRows, 'int32'))), scale);
        // scatter_add(targets, h) in JS: n x d, small.
        const hData = sh.dataSync();
        const scatter = new Float32Array(c * dim);
        for (let k = 0; k < n; k++) {
          const dst = (targetRows[k] as number) * dim;
          for (let j = 0; j < dim; j++)
            scatter[dst + j] = (scatter[dst + j] as number) + (hData[k * dim + j] as number);
        }
        let dw = tf.mul(
          tf.sub(tf.transpose(tf.matMul(tf.transpose(sh), sp)), tf.tensor2d(scatter, [c, dim])),
          scale,
        ) as tf.Tensor2D;
        if (skipFirst) dw = tf.concat([tf.zeros([1, dim]), dw], 0);
        sp.dispose();
        return [dh, dw];
      },
    };
  });
  return op(h, w) as tf.Scalar;
}

export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-6): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}
