// The decisions of one group commit, made in memory while the appending transaction holds the head row
// lock (postgres-appends.ts). No other writer, in this process or any other, can change a stream or take
// a position until that transaction ends, so checking here against the streams' heads as read under
// the lock, plus what earlier appends of the same group wrote, is exact. An append that fails its check
// changes nothing here and fails alone, the way a rolled-back savepoint would, without a round trip per
// append while every writer waits on the lock.
//
// The rules are the SQLite adapter's (sqlite-worker.mjs appendOne), kept in step with it.
import type { PreparedPart } from './postgres-parts.js';
import { WrongExpectedRevisionError, type AppendResult, type ExpectedRevision, type MultiAppendResult, type Position, type Revision } from './store.js';

/** Revision of a stream that has no events, internally; the port calls it 'no_stream'. */
export const NO_EVENTS = -1;

export interface WrittenEvent {
  revision: Revision;
  position: Position;
}

/** What the group knows: as read under the lock, then as changed by the group's accepted appends. */
export interface GroupState {
  /** Head revision of every stream the group touches (NO_EVENTS when it has none). */
  heads: Map<string, Revision>;
  /** Where each event id the group mentions already is, keyed by eventKey(stream, id). */
  written: Map<string, WrittenEvent>;
  /** The position the next accepted event takes. */
  next: Position;
}

/** Columns of the events the group writes, one array per column (one INSERT ... unnest). */
export interface GroupRows {
  positions: Position[];
  streams: string[];
  revisions: Revision[];
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
}

export type AppendOutcome = { ok: MultiAppendResult; written: number } | { error: WrongExpectedRevisionError };

/** Stream names never contain NUL here (PostgreSQL text cannot hold it), so NUL separates safely. */
export function eventKey(stream: string, id: string): string {
  return `${stream}\u0000${id}`;
}

export function emptyRows(): GroupRows {
  return { positions: [], streams: [], revisions: [], ids: [], types: [], data: [], metadata: [] };
}

/** Decide one (multi-stream) append; on success its rows are added and `state` moves on. */
export function decideAppend(parts: readonly PreparedPart[], state: GroupState, rows: GroupRows): AppendOutcome {
  const headOf = (stream: string) => state.heads.get(stream) ?? NO_EVENTS;
  const conflict = (part: PreparedPart): AppendOutcome => {
    const actual = headOf(part.stream);
    return { error: new WrongExpectedRevisionError(part.stream, part.expected, actual === NO_EVENTS ? 'no_stream' : actual) };
  };

  // A retry of an append that was already written: same ids, same order, same place, in every part.
  // Answer with the original result and write nothing (EventStoreDB's idempotent write).
  const first = earlierWrite(parts[0]!, state);
  if (first !== undefined) {
    if (first === null) return conflict(parts[0]!);
    const streams = [first];
    for (const part of parts.slice(1)) {
      const earlier = earlierWrite(part, state);
      if (earlier === undefined || earlier === null) return conflict(part);
      streams.push(earlier);
    }
    return { ok: { streams, position: Math.max(...streams.map((s) => s.position)) }, written: 0 };
  }

  const firstRevisions: Revision[] = [];
  for (const part of parts) {
    const current = headOf(part.stream);
    if (!expectationMet(part.expected, current)) return conflict(part);
    firstRevisions.push(current + 1);
  }
  // A later id of this append already in its stream (a partial overlap with another write): the
  // unique (stream, id) index would refuse the row, so it is a conflict for this caller.
  for (const part of parts) {
    if (part.ids.some((id) => state.written.has(eventKey(part.stream, id)))) return conflict(part);
  }

  let written = 0;
  const streams = parts.map((part, p): AppendResult => {
    const firstRevision = firstRevisions[p]!;
    let position = 0;
    for (let i = 0; i < part.ids.length; i++) {
      position = state.next++;
      const revision = firstRevision + i;
      rows.positions.push(position);
      rows.streams.push(part.stream);
      rows.revisions.push(revision);
      rows.ids.push(part.ids[i]!);
      rows.types.push(part.types[i]!);
      rows.data.push(part.data[i]!);
      rows.metadata.push(part.metadata[i]!);
      state.written.set(eventKey(part.stream, part.ids[i]!), { revision, position });
    }
    const nextRevision = firstRevision + part.ids.length - 1;
    state.heads.set(part.stream, nextRevision);
    written += part.ids.length;
    return { nextRevision, position };
  });
  return { ok: { streams, position: streams[streams.length - 1]!.position }, written };
}

/** Where a part was written before (a retry), or undefined; null when it overlaps another write. */
function earlierWrite(part: PreparedPart, state: GroupState): AppendResult | null | undefined {
  const first = state.written.get(eventKey(part.stream, part.ids[0]!));
  if (first === undefined) return undefined;
  let last = first;
  for (let i = 1; i < part.ids.length; i++) {
    const event = state.written.get(eventKey(part.stream, part.ids[i]!));
    // (stream, revision) is unique, so ids at consecutive revisions are exactly the run written then.
    if (event === undefined || event.revision !== first.revision + i) return null;
    last = event;
  }
  if (!expectationMet(part.expected, first.revision - 1)) return null;
  return { nextRevision: last.revision, position: last.position };
}

function expectationMet(expected: ExpectedRevision, current: Revision): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return current === NO_EVENTS;
    case 'stream_exists':
      return current !== NO_EVENTS;
    default:
      return expected === current;
  }
}
