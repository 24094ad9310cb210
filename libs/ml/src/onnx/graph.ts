import { onnx } from 'onnx-proto';

/**
 * A small ONNX graph builder: enough to write our models' inference graphs from trained weights.
 * Names are generated; initializers carry raw little-endian data.
 */

type Dim = number | string;
export type DType = 'float32' | 'int64' | 'bool';
type Attr = number | number[] | string | { floats: number[] } | { tensor: onnx.ITensorProto };

const TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function valueInfo(name: string, dtype: DType, dims: readonly Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: TYPE[dtype],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: Attr): onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ('floats' in v) return { name, type: A.FLOATS, floats: v.floats };
  return { name, type: A.TENSOR, t: v.tensor };
}

export function floatTensor(name: string, data: Float32Array, dims: readonly number[]): onnx.ITensorProto {
  return {
    name,
    dataType: TYPE.float32,
    dims: [...dims],
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

export function int64Tensor(name: string, data: readonly number[], dims: readonly number[]): onnx.ITensorProto {
  const buf = new BigInt64Array(data.map((x) => BigInt(x)));
  return { name, dataType: TYPE.int64, dims: [...dims], rawData: new Uint8Array(buf.buffer) };
}

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, dtype: DType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  output(value: string, name: string, dtype: DType, dims: readonly Dim[]): void {
    this.op('Identity', [value], {}, [name]);
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  floats(data: Float32Array | readonly number[], dims: readonly number[], prefix = 'w'): string {
    const name = this.fresh(prefix);
    this.initializers.push(floatTensor(name, data instanceof Float32Array ? data : Float32Array.from(data), dims));
    return name;
  }

  int64s(data: readonly number[], dims: readonly number[] = [data.length], prefix = 'c'): string {
    const name = this.fresh(prefix);
    this.initializers.push(int64Tensor(name, data, dims));
    return name;
  }

  scalar(v: number): string {
    return this.floats([v], [], 's');
  }

  /** Adds a node; returns its output name (or names, with `outputs`). */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, outputs?: readonly string[]): string {
    const outs = outputs ?? [this.fresh(type.toLowerCase())];
    this.nodes.push({
      opType: type,
      input: [...inputs],
      output: [...outs],
      name: this.fresh(`n_${type}`),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs[0] as string;
  }

  opMulti(type: string, inputs: readonly string[], count: number, attrs: Record<string, Attr> = {}): string[] {
    const outs = Array.from({ length: count }, () => this.fresh(type.toLowerCase()));
    this.op(type, inputs, attrs, outs);
    return outs;
  }

  // Common building blocks.
  matmul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }
  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }
  dense(x: string, w: { shape: number[]; data: Float32Array }, b?: { shape: number[]; data: Float32Array }): string {
    const y = this.matmul(x, this.floats(w.data, w.shape));
    return b ? this.add(y, this.floats(b.data, b.shape)) : y;
  }
  layerNorm(
    x: string,
    g: { shape: number[]; data: Float32Array },
    b: { shape: number[]; data: Float32Array },
    eps: number,
  ): string {
    return this.op('LayerNormalization', [x, this.floats(g.data, g.shape), this.floats(b.data, b.shape)], {
      axis: -1,
      epsilon: eps,
    });
  }

  build(opts: { opset?: number; producer?: string; doc?: string; metadata?: Record<string, string> } = {}): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
      producerName: opts.producer ?? 'aisle',
      docString: opts.doc ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}

/** Reads a float initializer (first whose name matches) from a serialized model, e.g. an embedding matrix. */
export function readInitializer(model: Uint8Array, name: RegExp): { dims: number[]; data: Float32Array } | undefined {
  const graph = onnx.ModelProto.decode(model).graph;
  const t = graph?.initializer?.find((i) => i.name && name.test(i.name));
  if (!t?.rawData) return undefined;
  const raw = t.rawData;
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return { dims: (t.dims ?? []).map(Number), data: new Float32Array(copy.buffer) };
}

/**
 * Names of the tensors in a serialized model whose data lives in external files. ONNX Runtime would read
 * those files by path (relative to the working directory when loading from bytes), so a model that names
 * any is refused before it reaches a session.
 */
export function externalDataTensors(model: Uint8Array): string[] {
  const out: string[] = [];
  const tensor = (t: onnx.ITensorProto | null | undefined): void => {
    if (t && (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0))
      out.push(t.name || '(unnamed)');
  };
  const sparse = (s: onnx.ISparseTensorProto | null | undefined): void => {
    tensor(s?.values);
    tensor(s?.indices);
  };
  const node = (n: onnx.INodeProto): void => {
    for (const a of n.attribute ?? []) {
      tensor(a.t);
      sparse(a.sparseTensor);
      a.tensors?.forEach(tensor);
      a.sparseTensors?.forEach(sparse);
      if (a.g) graph(a.g);
      a.graphs?.forEach(graph);
    }
  };
  const graph = (g: onnx.IGraphProto): void => {
    g.initializer?.forEach(tensor);
    g.sparseInitializer?.forEach(sparse);
    g.node?.forEach(node);
  };
  const m = onnx.ModelProto.decode(model);
  if (m.graph) graph(m.graph);
  for (const f of m.functions ?? []) f.node?.forEach(node);
  return out;
}
