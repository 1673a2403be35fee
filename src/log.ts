// A tiny structured logger: one JSON object per line on stderr, so stdout stays free for CLI output
// and any log shipper can parse every line without a format guess.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every entry (e.g. `{ role: 'worker' }`). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Where a finished line goes (without the newline). Default: stderr. */
  write?: (line: string) => void;
  /** Clock, injectable so tests get stable output. */
  now?: () => Date;
}

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// Keys every entry owns; a field with the same name is kept under `field.<name>` instead of
// silently replacing the entry's own time, level or message.
const RESERVED = new Set(['time', 'level', 'msg']);

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const threshold = SEVERITY[level];

  const loggerWith = (bound: LogFields): Logger => {
    const emit = (entryLevel: LogLevel, msg: string, fields?: LogFields) => {
      if (SEVERITY[entryLevel] < threshold) return;
      const entry: Record<string, unknown> = { time: now().toISOString(), level: entryLevel, msg };
      for (const source of [bound, fields ?? {}]) {
        for (const [key, value] of Object.entries(source)) {
          entry[RESERVED.has(key) ? `field.${key}` : key] = value;
        }
      }
      write(serialize(entry));
    };
    return {
      debug: (msg, fields) => emit('debug', msg, fields),
      info: (msg, fields) => emit('info', msg, fields),
      warn: (msg, fields) => emit('warn', msg, fields),
      error: (msg, fields) => emit('error', msg, fields),
      child: (fields) => loggerWith({ ...bound, ...fields }),
    };
  };
  return loggerWith({});
}

/**
 * JSON.stringify that never throws and keeps what matters: Errors become {name, message, stack}
 * (JSON.stringify would print `{}`) and bigints become strings. A cyclic field is the rare case, so
 * only then do we pay for tracking objects, replacing any object met twice with "[Circular]".
 * A logger that throws would turn a log call into an outage.
 */
function serialize(entry: Record<string, unknown>): string {
  try {
    return JSON.stringify(entry, plainValue);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(entry, (key, value: unknown) => {
      const plain = plainValue(key, value);
      if (typeof plain === 'object' && plain !== null) {
        if (seen.has(plain)) return '[Circular]';
        seen.add(plain);
      }
      return plain;
    });
  }
}

function plainValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const { name, message, stack } = value;
    const cause: unknown = (value as { cause?: unknown }).cause;
    return cause === undefined ? { name, message, stack } : { name, message, stack, cause };
  }
  return value;
}
