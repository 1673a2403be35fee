// What a CLI command may touch of the outside world. Passed in rather than taken from `process`, so the
// tests run the real CLI in-process and read exactly what a user would see.

export interface CliIo {
  /** One line of the command's output (stdout): what a script pipes on. */
  out: (line: string) => void;
  /** One line of diagnostics, progress and summaries (stderr): what a person reads. */
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Standard input, for the interactive command (chat); main.ts passes process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** The standard output stream itself, for a terminal's line editing and prompt (chat on a TTY). */
  stdout?: NodeJS.WritableStream;
}

/** One `planline <name> …` command. `run` resolves to the process exit code. */
export interface CliCommand {
  name: string;
  /** `name <args> [options]`, as shown in the usage text. */
  synopsis: string;
  /** One line saying what the command is for. */
  summary: string;
  /** Lines of `planline help <name>` below the summary: arguments, options, what goes where. */
  details: readonly string[];
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** Exit codes: scripts branch on these, so they are part of the CLI's interface. */
export const EXIT = {
  ok: 0,
  /** The command ran and failed: unknown stream, invalid file, store unreachable, bad configuration. */
  failed: 1,
  /** The command line itself is wrong. */
  usage: 2,
} as const;
