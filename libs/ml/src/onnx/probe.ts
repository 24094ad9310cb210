/**
 * Sanity checks for a freshly loaded model, run on probe inputs before it may serve: a model that
 * answers NaN (e.g. trained on nothing) or out-of-range values is refused and the serving one stays.
 */

/** A loaded model that failed its probe. */
export class ModelProbeError extends Error {
  override readonly name = 'ModelProbeError';
}

/** Throws ModelProbeError unless every value is a finite number (within `range`, when given). */
export function expectFinite(
  what: string,
  values: ArrayLike<number | bigint> | undefined,
  opts: { length?: number; range?: readonly [number, number] } = {},
): void {
  if (!values) throw new ModelProbeError(`${what}: missing`);
  if (opts.length !== undefined && values.length !== opts.length)
    throw new ModelProbeError(`${what}: ${values.length} values, expected ${opts.length}`);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]);
    if (!Number.isFinite(v)) throw new ModelProbeError(`${what}[${i}] is ${v}`);
    if (opts.range && (v < opts.range[0] || v > opts.range[1]))
      throw new ModelProbeError(`${what}[${i}] = ${v}, outside [${opts.range[0]}, ${opts.range[1]}]`);
  }
}
