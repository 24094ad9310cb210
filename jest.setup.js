// onnxruntime-node's native addon creates typed arrays in Node's main realm while jest runs each test
// file in its own realm, so `x instanceof Float32Array` is false for them and onnxruntime-common throws.
// Compare by tag instead (the same workaround transformers.js uses in its tests/init.js). Tests only.
const patched = Symbol.for('aisle.typedArrayHasInstance');
for (const T of [
  Float32Array,
  Float64Array,
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
]) {
  if (T[patched]) continue;
  Object.defineProperty(T, Symbol.hasInstance, {
    configurable: true,
    value: (x) => ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === `[object ${T.name}]`,
  });
  Object.defineProperty(T, patched, { value: true });
}
