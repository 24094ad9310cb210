import { parseArgs as parseNodeArgs } from 'node:util';

/** Command-line options a command accepts: `string` takes a value, `boolean` is a bare flag. */
export type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;

export interface ParsedArgs {
  positional: string[];
  /** Every given option as a string (flags as 'true'). */
  options: Map<string, string>;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * `node:util` parseArgs in strict mode: an option that is not in `spec`, a missing value or a value given
 * to a flag is a usage error (exit 2), never silently ignored (a misspelled `--finetune-epoch 0` used to
 * train with the default).
 */
export function parseArgs(argv: readonly string[], spec: OptionSpec): ParsedArgs {
  let parsed;
  try {
    parsed = parseNodeArgs({ args: [...argv], options: spec, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  const options = new Map<string, string>();
  for (const [k, v] of Object.entries(parsed.values)) {
    if (v === undefined) continue;
    options.set(k, String(v));
  }
  return { positional: parsed.positionals, options };
}

export function option(args: ParsedArgs, name: string, fallback?: string): string {
  const v = args.options.get(name) ?? fallback;
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

export function numberOption(args: ParsedArgs, name: string, fallback: number): number {
  const raw = args.options.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
  return n;
}

export function flag(args: ParsedArgs, name: string): boolean {
  return args.options.get(name) === 'true';
}
