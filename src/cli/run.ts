// The CLI's core: argv → command → exit code. Everything a command prints goes through `io`, so tests
// run exactly this in-process; main.ts only wires it to the real process.
import { ConfigError } from '../config.js';
import { chatCommand } from './chat/command.js';
import { CliFailure, UsageError } from './errors.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { EXIT, type CliCommand, type CliIo } from './io.js';
import { rebuildCommand } from './rebuild.js';
import { replayCommand } from './replay.js';

export type { CliIo } from './io.js';

const COMMANDS: readonly CliCommand[] = [replayCommand, exportCommand, importCommand, rebuildCommand, chatCommand];
const HELP_WORDS = ['help', '--help', '-h'];

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || HELP_WORDS.includes(name)) {
    const topic = COMMANDS.find((c) => c.name === args[0]);
    printLines(io.out, topic === undefined ? usage() : commandUsage(topic));
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) return usageFailure(io, new UsageError(`unknown command ${JSON.stringify(name)}`));
  if (args.some((arg) => HELP_WORDS.slice(1).includes(arg))) {
    printLines(io.out, commandUsage(command));
    return EXIT.ok;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    return reportFailure(io, command, error);
  }
}

function reportFailure(io: CliIo, command: CliCommand, error: unknown): number {
  if (error instanceof UsageError) return usageFailure(io, error);
  if (error instanceof CliFailure || error instanceof ConfigError) {
    printLines(io.err, `planline ${command.name}: ${error.message}`);
    return EXIT.failed;
  }
  // Unexpected (a store outage, a bug): name it, so a report says what kind of failure it was.
  const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  printLines(io.err, `planline ${command.name}: ${described}`);
  return EXIT.failed;
}

function usageFailure(io: CliIo, error: UsageError): number {
  const command = COMMANDS.find((c) => c.name === error.command);
  io.err(`planline${command ? ` ${command.name}` : ''}: ${error.message}`);
  printLines(io.err, command === undefined ? usage() : commandUsage(command));
  return EXIT.usage;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.synopsis.length));
  return [
    'Usage: planline <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.synopsis.padEnd(width)}  ${c.summary}`),
    `  ${'help [command]'.padEnd(width)}  this text, or one command's`,
    '',
    ENVIRONMENT,
    EXIT_CODES,
  ].join('\n');
}

function commandUsage(command: CliCommand): string {
  return [
    `Usage: planline ${command.synopsis}`,
    '',
    `  ${command.summary}`,
    ...command.details.map((line) => `  ${line}`),
    '',
    ENVIRONMENT,
    EXIT_CODES,
  ].join('\n');
}

const ENVIRONMENT =
  'Environment: EVENTSTORE_URL (sqlite:<path>, default sqlite:./data/planline.db; or kurrentdb://… or postgres://…), ' +
  'REDIS_URL (rebuild target; unset: embedded in-memory views)';
const EXIT_CODES = 'Exit codes: 0 done, 1 failed (unknown stream, invalid file, unreachable store, bad configuration), 2 bad arguments';

function printLines(print: (line: string) => void, text: string): void {
  for (const line of text.split('\n')) print(line);
}
