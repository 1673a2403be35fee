// `planline export [--stream <name>] [--out <file>]`: the log (or one stream) as JSON Lines, to copy a
// bug's history out of production and replay or import it elsewhere.
import { open, rename, rm } from 'node:fs/promises';
import type { EventStore, StoredEvent } from '../events/store.js';
import { expectPositionals, parseCommandArgs } from './args.js';
import { CliFailure, UsageError } from './errors.js';
import { EXIT, type CliCommand, type CliIo } from './io.js';
import { toExportLine } from './jsonl.js';
import { withEventStore } from './store.js';

const NAME = 'export';
const PAGE_SIZE = 1_000;

interface ExportRequest {
  /** One stream; undefined: all of $all. */
  stream: string | undefined;
  /** A file; undefined: stdout. */
  out: string | undefined;
}

export const exportCommand: CliCommand = {
  name: NAME,
  synopsis: 'export [--stream <name>] [--out <file>]',
  summary: 'stored events as JSON Lines, in log order: all of $all, or one stream; to stdout or a file',
  details: [
    '--stream <name>  only this stream (default: every stream, in global order)',
    '--out <file>     write the lines to this file (default: stdout); a summary goes to stderr',
  ],
  async run(args, io) {
    const request = parseExportArgs(args);
    const sink = request.out === undefined ? stdoutSink(io) : await fileSink(request.out);
    let counts: ExportCounts;
    try {
      counts = await withEventStore(io, (store) => writeEvents(pagesOf(store, request.stream), sink));
      if (request.stream !== undefined && counts.events === 0) {
        throw new CliFailure(`stream ${request.stream} not found: it has no events`);
      }
      await sink.commit();
    } catch (error) {
      await sink.abort();
      throw error;
    }
    io.err(`exported ${counts.events} events of ${counts.streams} streams to ${request.out ?? 'stdout'}`);
    return EXIT.ok;
  },
};

function parseExportArgs(args: readonly string[]): ExportRequest {
  const { values, positionals } = parseCommandArgs(NAME, args, { stream: { type: 'string' }, out: { type: 'string' } });
  expectPositionals(NAME, positionals, []);
  if (values.stream !== undefined && values.stream.trim() === '') throw new UsageError('--stream needs a stream name', NAME);
  if (values.out !== undefined && values.out.trim() === '') throw new UsageError('--out needs a file path', NAME);
  return { stream: values.stream, out: values.out };
}

/**
 * The events to export, one page at a time. $all is read up to the head it had when the export began,
 * so an export taken from a live system is a consistent prefix of the log that ends somewhere definite.
 */
async function* pagesOf(store: EventStore, stream: string | undefined): AsyncGenerator<StoredEvent[]> {
  if (stream !== undefined) {
    for (let from = 0; ; ) {
      const page = await store.readStream(stream, { fromRevision: from, maxCount: PAGE_SIZE });
      const last = page.at(-1);
      if (last === undefined) return;
      yield page;
      from = last.revision + 1;
    }
  }
  const head = await store.headPosition();
  for (let after = 0; after < head; ) {
    const page = (await store.readAll({ after, maxCount: PAGE_SIZE })).filter((event) => event.position <= head);
    const last = page.at(-1);
    if (last === undefined) return;
    yield page;
    after = last.position;
  }
}

interface ExportCounts {
  events: number;
  streams: number;
}

async function writeEvents(pages: AsyncIterable<StoredEvent[]>, sink: LineSink): Promise<ExportCounts> {
  const streams = new Set<string>();
  let events = 0;
  for await (const page of pages) {
    await sink.write(page.map(toExportLine));
    for (const event of page) streams.add(event.stream);
    events += page.length;
  }
  return { events, streams: streams.size };
}

// ---------------------------------------------------------------------------------------------------
// Where the lines go.

interface LineSink {
  write(lines: readonly string[]): Promise<void>;
  /** The export is complete. */
  commit(): Promise<void>;
  /** The export failed: leave nothing that looks like a complete export behind. */
  abort(): Promise<void>;
}

function stdoutSink(io: CliIo): LineSink {
  return {
    async write(lines) {
      for (const line of lines) io.out(line);
    },
    async commit() {},
    async abort() {},
  };
}

/** Written to a temporary file beside the target and renamed at the end: a failed export never leaves a truncated file under the name asked for. */
async function fileSink(path: string): Promise<LineSink> {
  const partial = `${path}.partial-${process.pid}`;
  const file = await open(partial, 'w');
  return {
    async write(lines) {
      if (lines.length > 0) await file.write(`${lines.join('\n')}\n`);
    },
    async commit() {
      await file.sync();
      await file.close();
      await rename(partial, path);
    },
    async abort() {
      await file.close().catch(() => {});
      await rm(partial, { force: true });
    },
  };
}
