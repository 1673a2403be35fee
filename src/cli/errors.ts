// The two ways a CLI command fails on purpose. Anything else that escapes a command is a bug or an
// outage, reported with its name and message and exit code 1.

/** The command line is wrong: run.ts prints the message and the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command whose usage to show; undefined: the general usage. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** The command ran and cannot do what was asked (unknown stream, invalid file): exit code 1. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
}
