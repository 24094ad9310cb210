/** `--key value`, `--key=value` and bare `--flag` arguments after positional ones. */
export interface ParsedArgs {
  positional: string[];
  options: Map<string, string>;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) options.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !(argv[i + 1] as string).startsWith('--'))
      options.set(a.slice(2), argv[++i] as string);
    else options.set(a.slice(2), 'true');
  }
  return { positional, options };
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
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
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
  return n;
}
