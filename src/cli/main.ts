#!/usr/bin/env node
// `planline`: the CLI (replay, export, import, rebuild; chat, the terminal IDE client). Everything
// lives in run.ts; this file only connects it to the process.
import { runCli } from './run.js';

// `planline export | head` closes stdout early: that is the reader's choice, not a failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
});

// Exit once the output is flushed rather than when the event loop empties: the command is over, and a
// client that failed to connect (ioredis keeps reconnecting after a failed connect()) must not keep a
// one-shot tool running forever.
const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
