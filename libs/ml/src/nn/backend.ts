import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export { tf };

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The native binding exists only where libtensorflow could be downloaded at install time. */
function nativeBindingPresent(pkg: string): boolean {
  try {
    const dir = dirname(require.resolve(`${pkg}/package.json`));
    return existsSync(join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'));
  } catch {
    return false;
  }
}

let chosen: { backend: BackendName; detail: string } | undefined;

/**
 * Picks the fastest TF.js backend available: tfjs-node-gpu, tfjs-node, then wasm (SIMD), then cpu.
 * Native packages are optional dependencies whose install downloads libtensorflow; where that failed the
 * binding file is missing and requiring them would throw (with a flood of warnings), so check first.
 * `AISLE_TF_BACKEND` (read by callers) can force one.
 */
export async function initBackend(
  opts: { prefer?: BackendName | 'auto'; log?: (msg: string) => void } = {},
): Promise<{ backend: BackendName; detail: string }> {
  if (chosen) return chosen;
  const log = opts.log ?? (() => undefined);
  const prefer = opts.prefer ?? 'auto';
  const tried: string[] = [];
  const tryNative = async (pkg: string): Promise<boolean> => {
    if (!nativeBindingPresent(pkg)) {
      tried.push(`${pkg}: not installed with its native binding`);
      return false;
    }
    try {
      // Registers the 'tensorflow' backend as a side effect of loading.
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return true;
    } catch (err) {
      tried.push(`${pkg}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return false;
  };
  if (
    (prefer === 'auto' || prefer === 'tensorflow') &&
    ((await tryNative('@tensorflow/tfjs-node-gpu')) || (await tryNative('@tensorflow/tfjs-node')))
  ) {
    chosen = { backend: 'tensorflow', detail: 'native TensorFlow (tfjs-node)' };
  } else if (prefer !== 'cpu') {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + '/');
      if (await tf.setBackend('wasm')) chosen = { backend: 'wasm', detail: 'WebAssembly (SIMD, single thread)' };
    } catch (err) {
      tried.push(`wasm: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!chosen) {
    await tf.setBackend('cpu');
    chosen = { backend: 'cpu', detail: 'pure JavaScript (slowest)' };
  }
  await tf.ready();
  log(`TF.js backend: ${chosen.backend} (${chosen.detail})${tried.length ? `; skipped: ${tried.join('; ')}` : ''}`);
  return chosen;
}
