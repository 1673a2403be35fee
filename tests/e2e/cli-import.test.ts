// `planline import` of files larger than one chunk: order across chunks, a conflict met in a later
// chunk, a file that changes between the passes, progress, and a store without ordered import.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliFailure } from '../../src/cli/errors.js';
import { CHUNK_BYTES, lineChunks } from '../../src/cli/import-chunks.js';
import { writeImport } from '../../src/cli/import-write.js';
import { runCli } from '../../src/cli/run.js';
import { openSqliteEventStore } from '../../src/events/sqlite-store.js';
import type { EventStore, StoredEvent } from '../../src/events/store.js';
import { newEvents } from '../contract/event-store.contract.js';

const dir = mkdtempSync(join(tmpdir(), 'planline-cli-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const freshDb = () => join(dir, `${randomUUID()}.db`);

/** An export of `streams` streams of `each` events, interleaved, with enough text to span several chunks. */
function exportLines(streams: number, each: number): string[] {
  const perStream = Array.from({ length: streams }, (_, s) =>
    newEvents(each).map((e, revision) => ({ stream: `stream-${s}`, revision, position: 0, ...e, data: { ...e.data, note: 'n'.repeat(300) } })),
  );
  return Array.from({ length: streams * each }, (_, i) => {
    const event = perStream[i % streams]![Math.floor(i / streams)]!;
    return JSON.stringify({ ...event, position: i + 1 });
  });
}

function writeExport(lines: readonly string[]): string {
  const file = join(dir, `${randomUUID()}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function cli(argv: string[], db: string) {
  const err: string[] = [];
  const code = await runCli(argv, { out: () => {}, err: (line) => err.push(line), env: { EVENTSTORE_URL: `sqlite:${db}` } });
  return { code, err };
}

async function withStore<T>(path: string, use: (store: EventStore) => Promise<T>): Promise<T> {
  const store = openSqliteEventStore(path);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

const readAll = (path: string) => withStore(path, (store) => store.readAll({ maxCount: 1_000_000 }));
const shape = ({ stream, revision, id }: Pick<StoredEvent, 'stream' | 'revision' | 'id'>) => ({ stream, revision, id });

describe('planline import, chunk by chunk', () => {
  const lines = exportLines(40, 150); // 6,000 events, ~3 MiB: several chunks
  const file = writeExport(lines);
  const exported = lines.map((line) => JSON.parse(line) as StoredEvent);

  it('spans several chunks and keeps the export order across them; a second run writes nothing', async () => {
    expect(readFileSync(file).length).toBeGreaterThan(2 * CHUNK_BYTES);
    const target = freshDb();
    const first = await cli(['import', file], target);
    expect(first.code).toBe(0);
    expect(first.err.at(-1)).toMatch(/^imported 6000, already present 0 \((\d+) commits/);
    expect(Number(/\((\d+) commits/.exec(first.err.at(-1)!)![1])).toBeLessThan(10);
    const log = await readAll(target);
    expect(log.map(shape)).toEqual(exported.map(shape));
    expect(log.map((e) => e.position)).toEqual(exported.map((e) => e.position));

    const second = await cli(['import', file], target);
    expect(second.err.at(-1)).toMatch(/^imported 0, already present 6000 /);
    expect(await readAll(target)).toEqual(log);
  });

  it('stops at a conflict in a later chunk, naming its line and stream, with the chunks before it written', async () => {
    const target = freshDb();
    const conflictAt = 4_500; // 0-based index in the file
    const clash = exported[conflictAt]!;
    // The target already holds the stream up to just before the clash, but with another event there.
    await withStore(target, async (store) => {
      const before = exported.filter((e, i) => e.stream === clash.stream && i < conflictAt);
      await store.append(clash.stream, [...before, { ...newEvents(1)[0]! }].map(({ id, type, data, metadata }) => ({ id, type, data, metadata })), 'no_stream');
    });
    const run = await cli(['import', file], target);
    expect(run.code).toBe(1);
    expect(run.err.join('\n')).toMatch(
      new RegExp(`line ${conflictAt + 1}: stream ${clash.stream} revision ${clash.revision}: the target store holds different events`),
    );
    // The log: the clashing stream as it was, then the export up to the chunk that met the clash.
    const chunkStart = (await chunkStarts(file)).filter((start) => start <= conflictAt).at(-1)!;
    expect(chunkStart).toBeGreaterThan(0);
    const log = await readAll(target);
    expect(log.slice(clash.revision + 1).map(shape)).toEqual(
      exported
        .slice(0, chunkStart)
        .filter((e) => e.stream !== clash.stream)
        .map(shape),
    );
  });

  it('refuses to write a chunk the file no longer holds as validated, keeping what came before', async () => {
    const changing = writeExport(lines);
    const digests: string[] = [];
    for await (const chunk of lineChunks(changing)) digests.push(chunk.digest);
    expect(digests.length).toBeGreaterThan(2);
    // Between the passes, someone edits a line in the second chunk.
    const edited = [...lines];
    const [firstChunk] = await firstChunkLength(changing);
    edited[firstChunk + 10] = edited[firstChunk + 10]!.replace('"note":"n', '"note":"N');
    writeFileSync(changing, `${edited.join('\n')}\n`);

    const target = freshDb();
    const updates: number[] = [];
    const failure = await withStore(target, (store) => writeImport(store, changing, digests, { update: (done) => updates.push(done) })).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(CliFailure);
    expect((failure as Error).message).toMatch(
      new RegExp(`the file changed during the import \\(lines ${firstChunk + 1}–\\d+ are not the ones validated\\); ${firstChunk} events were imported`),
    );
    expect((await readAll(target)).map(shape)).toEqual(exported.slice(0, firstChunk).map(shape));
    expect(updates).toEqual([firstChunk]);
  });

  it('reports progress chunk by chunk up to the whole file', async () => {
    const digests: string[] = [];
    for await (const chunk of lineChunks(file)) digests.push(chunk.digest);
    const updates: number[] = [];
    const result = await withStore(freshDb(), (store) => writeImport(store, file, digests, { update: (done) => updates.push(done) }));
    expect(result).toMatchObject({ imported: 6000, alreadyPresent: 0 });
    expect(updates).toHaveLength(digests.length);
    expect(updates.every((done, i) => i === 0 || done > updates[i - 1]!)).toBe(true);
    expect(updates.at(-1)).toBe(6000);
  });

  it('imports into a store without ordered import one stream run at a time, in the same order', async () => {
    const small = exportLines(3, 40);
    const smallFile = writeExport(small);
    const target = freshDb();
    const result = await withStore(target, (store) => {
      // The same store seen only through the EventStore port.
      const portOnly: EventStore = {
        capabilities: store.capabilities,
        append: (...args) => store.append(...args),
        appendMulti: (...args) => store.appendMulti(...args),
        readStream: (...args) => store.readStream(...args),
        readAll: (...args) => store.readAll(...args),
        headPosition: () => store.headPosition(),
        subscribeToAll: (...args) => store.subscribeToAll(...args),
        logId: () => store.logId(),
        close: () => store.close(),
      };
      return lineDigests(smallFile).then((digests) => writeImport(portOnly, smallFile, digests, { update: () => {} }));
    });
    expect(result).toMatchObject({ imported: 120, alreadyPresent: 0, commits: 120 });
    expect((await readAll(target)).map(shape)).toEqual(small.map((line) => shape(JSON.parse(line) as StoredEvent)));
  });
});

async function lineDigests(file: string): Promise<string[]> {
  const digests: string[] = [];
  for await (const chunk of lineChunks(file)) digests.push(chunk.digest);
  return digests;
}

/** 0-based index in the file of each chunk's first line (the file has no blank lines). */
async function chunkStarts(file: string): Promise<number[]> {
  const starts: number[] = [];
  for await (const chunk of lineChunks(file)) starts.push(chunk.lines[0]!.number - 1);
  return starts;
}

async function firstChunkLength(file: string): Promise<[number]> {
  for await (const chunk of lineChunks(file)) return [chunk.lines.length];
  return [0];
}
