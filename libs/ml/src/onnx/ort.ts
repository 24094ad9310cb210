import * as ort from 'onnxruntime-node';
import { externalDataTensors } from './graph';

/**
 * The one place that imports onnxruntime-node: session creation with an execution-provider list
 * (e.g. `cuda,cpu`), falling back to CPU with the reason when the GPU provider cannot load.
 */

export type Provider = 'cuda' | 'webgpu' | 'cpu';

export interface OrtSession {
  readonly provider: Provider;
  /** Why a preferred provider was not used, when one was not. */
  readonly fallbackReason: string | undefined;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorInput>): Promise<Record<string, OrtTensorOutput>>;
  release(): Promise<void>;
}

export interface OrtTensorInput {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: readonly number[];
}

export interface OrtTensorOutput {
  type: string;
  data: Float32Array | BigInt64Array | Int32Array;
  dims: readonly number[];
}

/** A model that ONNX Runtime must not be given (it names external data files). */
export class UnsafeModelError extends Error {
  override readonly name = 'UnsafeModelError';
}

export function availableProviders(): string[] {
  return ort.listSupportedBackends().map((b) => b.name);
}

export async function createSession(
  model: Uint8Array,
  opts: { providers?: readonly Provider[]; intraOpThreads?: number } = {},
): Promise<OrtSession> {
  const external = externalDataTensors(model);
  if (external.length > 0)
    throw new UnsafeModelError(
      `the model keeps tensor data in external files (${external.slice(0, 3).join(', ')}); only self-contained models are loaded`,
    );
  const wanted = opts.providers && opts.providers.length > 0 ? opts.providers : (['cpu'] as const);
  const reasons: string[] = [];
  for (const provider of wanted) {
    try {
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: opts.intraOpThreads ?? 1,
        interOpNumThreads: 1,
      });
      return wrap(session, provider, reasons.length > 0 ? reasons.join('; ') : undefined);
    } catch (err) {
      reasons.push(`${provider}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  if (!wanted.includes('cpu')) {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: opts.intraOpThreads ?? 1,
    });
    return wrap(session, 'cpu', reasons.join('; '));
  }
  throw new Error(`no execution provider could load the model: ${reasons.join('; ')}`);
}

function wrap(session: ort.InferenceSession, provider: Provider, fallbackReason: string | undefined): OrtSession {
  return {
    provider,
    fallbackReason,
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const tensors: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.type, t.data, [...t.dims]);
      const out = await session.run(tensors);
      const result: Record<string, OrtTensorOutput> = {};
      for (const [name, t] of Object.entries(out)) {
        result[name] = { type: t.type, data: t.data as Float32Array | BigInt64Array | Int32Array, dims: t.dims };
        t.dispose?.();
      }
      for (const t of Object.values(tensors)) t.dispose?.();
      return result;
    },
    release: () => session.release(),
  };
}
