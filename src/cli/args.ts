// Command-line parsing on node:util parseArgs, with every mistake turned into a UsageError so the user
// gets the command's usage instead of a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Strict parsing: unknown options, missing values and ambiguous ones (`--at -1`) are usage errors. */
export function parseCommandArgs<O extends Options>(command: string, args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    if (isParseArgsError(error)) throw new UsageError(firstLine(error.message), command);
    throw error;
  }
}

/** Exactly the positionals `names`, named in the message when some are missing or extra. */
export function expectPositionals(command: string, positionals: readonly string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(`missing ${names.slice(positionals.length).map((n) => `<${n}>`).join(' ')}`, command);
  }
  if (positionals.length > names.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`, command);
  }
  return [...positionals];
}

/** A revision given on the command line: a non-negative integer, nothing else (no "1e3", no "3.0"). */
export function parseRevisionArg(command: string, option: string, raw: string): number {
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new UsageError(`${option} expects a revision (a non-negative integer), got ${JSON.stringify(raw)}`, command);
  }
  return Number(raw);
}

function isParseArgsError(error: unknown): error is Error {
  const code: unknown = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}
