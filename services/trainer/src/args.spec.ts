import { flag, numberOption, option, parseArgs, UsageError, type OptionSpec } from './args';

const spec: OptionSpec = { dataset: { type: 'string' }, seed: { type: 'string' }, tune: { type: 'boolean' } };

test('values with a space or =, positionals, and flags', () => {
  const a = parseArgs(['eval', '--dataset', 'd', '--seed=7', '--tune'], spec);
  expect(a.positional).toEqual(['eval']);
  expect(option(a, 'dataset')).toBe('d');
  expect(numberOption(a, 'seed', 1)).toBe(7);
  expect(flag(a, 'tune')).toBe(true);
  expect(numberOption(parseArgs([], spec), 'seed', 1)).toBe(1);
});

test('a misspelled option is a usage error, not ignored', () => {
  expect(() => parseArgs(['eval', '--datset', 'd'], spec)).toThrow(UsageError);
  expect(() => parseArgs(['eval', '--datset', 'd'], spec)).toThrow(/datset/);
});

test('a missing value, a value on a flag and a non-number are usage errors', () => {
  expect(() => parseArgs(['eval', '--dataset'], spec)).toThrow(UsageError);
  expect(() => parseArgs(['eval', '--tune=yes'], spec)).toThrow(UsageError);
  expect(() => numberOption(parseArgs(['--seed', 'x'], spec), 'seed', 1)).toThrow(/must be a number/);
  expect(() => option(parseArgs([], spec), 'dataset')).toThrow(/required/);
});
