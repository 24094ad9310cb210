/** Issue #18: a model whose tensors point at external files never reaches ONNX Runtime. */
import { onnx } from 'onnx-proto';
import { createSession, externalDataTensors, floatTensor, UnsafeModelError } from '../src';

function addModel(w: onnx.ITensorProto, viaConstant = false): Uint8Array {
  const f = onnx.TensorProto.DataType.FLOAT;
  const io = (name: string): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: f, shape: { dim: [{ dimValue: 2 }] } } },
  });
  const nodes: onnx.INodeProto[] = [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }];
  if (viaConstant)
    nodes.unshift({
      opType: 'Constant',
      output: ['w'],
      attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: w }],
    });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'g', node: nodes, initializer: viaConstant ? [] : [w], input: [io('x')], output: [io('y')] },
  }).finish();
}

const inline = floatTensor('w', new Float32Array([1, 2]), [2]);
const external: onnx.ITensorProto = {
  name: 'w',
  dataType: onnx.TensorProto.DataType.FLOAT,
  dims: [2],
  dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
  externalData: [
    { key: 'location', value: '../../../etc/passwd' },
    { key: 'length', value: '8' },
  ],
};

test('models with external data are refused; self-contained ones load', async () => {
  expect(externalDataTensors(addModel(inline))).toEqual([]);
  expect(externalDataTensors(addModel(external))).toEqual(['w']);
  expect(externalDataTensors(addModel(external, true))).toEqual(['w']);
  await expect(createSession(addModel(external))).rejects.toThrow(UnsafeModelError);
  await expect(createSession(addModel(external, true))).rejects.toThrow(/external files \(w\)/);
  const session = await createSession(addModel(inline));
  const out = await session.run({ x: { type: 'float32', data: new Float32Array([10, 20]), dims: [2] } });
  expect([...(out['y']?.data as Float32Array)]).toEqual([11, 22]);
  await session.release();
});
