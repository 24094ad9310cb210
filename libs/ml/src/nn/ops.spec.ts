import { tf } from './backend';
import { batchMatMul, gatherRows, matMul, softmaxCrossEntropy } from './ops';

// The custom gradients must equal TF.js's own (checked on the cpu backend, which has every kernel).
beforeAll(async () => {
  await tf.setBackend('cpu');
});

const close = (a: tf.Tensor, b: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-4);

test('gatherRows gradient = tf.gather gradient', () => {
  const table = tf.randomNormal([7, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
  const ids = tf.tensor2d(
    [
      [1, 4],
      [4, 0],
    ],
    [2, 2],
    'int32',
  );
  const weights = tf.randomNormal([2, 2, 3], 0, 1, 'float32', 2);
  const ours = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t as tf.Tensor2D, ids), weights)))(table);
  const theirs = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), weights)))(table);
  close(ours, theirs);
});

test('matMul and batchMatMul gradients', () => {
  const a = tf.randomNormal([4, 3], 0, 1, 'float32', 3) as tf.Tensor2D;
  const b = tf.randomNormal([3, 5], 0, 1, 'float32', 4) as tf.Tensor2D;
  const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.square(matMul(x as tf.Tensor2D, y as tf.Tensor2D))),
  )([a, b]);
  const [ea, eb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.square(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D))),
  )([a, b]);
  close(da!, ea!);
  close(db!, eb!);
  const x = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 5);
  const y = tf.randomNormal([2, 3, 5, 2], 0, 1, 'float32', 6);
  const [dx, dy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(batchMatMul(p, q))))([x, y]);
  const [fx, fy] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p, q))))([x, y]);
  close(dx!, fx!);
  close(dy!, fy!);
});

test('softmaxCrossEntropy value and gradients = the textbook formulation', () => {
  const h = tf.randomNormal([6, 4], 0, 1, 'float32', 7) as tf.Tensor2D;
  const w = tf.randomNormal([9, 4], 0, 1, 'float32', 8) as tf.Tensor2D;
  const targets = Int32Array.from([1, 3, 8, 1, 2, 5]);
  for (const skipFirst of [false, true]) {
    const reference = (hh: tf.Tensor, ww: tf.Tensor) => {
      const wc = skipFirst ? tf.slice(ww, [1, 0], [8, 4]) : ww;
      const logits = tf.matMul(hh, wc, false, true);
      const labels = tf.oneHot(
        tf.tensor1d(
          Int32Array.from(targets, (t) => t - (skipFirst ? 1 : 0)),
          'int32',
        ),
        skipFirst ? 8 : 9,
      );
      return tf.losses.softmaxCrossEntropy(labels, logits);
    };
    close(softmaxCrossEntropy(h, w, targets, skipFirst), reference(h, w));
    const [dh, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      softmaxCrossEntropy(a as tf.Tensor2D, b as tf.Tensor2D, targets, skipFirst),
    )([h, w]);
    const [rh, rw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => reference(a, b))([h, w]);
    close(dh!, rh!);
    close(dw!, rw!);
  }
});
