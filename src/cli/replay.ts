// `planline replay <stream> [--at N] [--json]`: a stream as a timeline, one line per event with the
// state after it, so "how did this plan end up here?" is answered by reading, not by guessing.
import type { RunState } from '../commands/run.js';
import type { EventStore, StoredEvent } from '../events/store.js';
import { expectPositionals, parseCommandArgs, parseRevisionArg } from './args.js';
import { CliFailure, UsageError } from './errors.js';
import { keyFields } from './event-summary.js';
import { EXIT, type CliCommand, type CliIo } from './io.js';
import { withEventStore } from './store.js';
import { buildTimeline, type PlanSnapshot, type SessionSnapshot, type Timeline, type TimelineEntry } from './timeline.js';

const NAME = 'replay';

interface ReplayRequest {
  stream: string;
  /** Stop after this revision and print the full state there. */
  at: number | undefined;
  json: boolean;
}

export const replayCommand: CliCommand = {
  name: NAME,
  synopsis: 'replay <stream> [--at N] [--json]',
  summary: 'a stream as a timeline: revision, time, type, key fields and the state after each event',
  details: [
    '<stream>     e.g. plan-<id> or session-<id>; a session\'s fsm uses its plan as it was at each event',
    '--at N       stop after revision N, then print the full folded state there (pretty JSON)',
    '--json       one JSON object per event: {revision, position, at, type, data, metadata, state}',
  ],
  async run(args, io) {
    const request = parseReplayArgs(args);
    const timeline = await withEventStore(io, async (store) => buildTimeline(store, request.stream, await readUpTo(store, request)));
    if (request.json) printJson(timeline, io);
    else printText(timeline, io);
    if (request.at !== undefined && !request.json) printStateAt(timeline, request.at, io);
    return EXIT.ok;
  },
};

function parseReplayArgs(args: readonly string[]): ReplayRequest {
  const { values, positionals } = parseCommandArgs(NAME, args, { at: { type: 'string' }, json: { type: 'boolean' } });
  const [stream] = expectPositionals(NAME, positionals, ['stream']);
  if (stream === undefined || stream.trim() === '') throw new UsageError('the stream name is empty', NAME);
  return { stream, at: values.at === undefined ? undefined : parseRevisionArg(NAME, '--at', values.at), json: values.json ?? false };
}

/** The stream's events up to `--at` (all of them without it); an empty or too short stream is a failure. */
async function readUpTo(store: EventStore, { stream, at }: ReplayRequest): Promise<StoredEvent[]> {
  const events = await store.readStream(stream, at === undefined ? {} : { maxCount: at + 1 });
  const last = events.at(-1);
  if (last === undefined) throw new CliFailure(`stream ${stream} not found: it has no events`);
  if (at !== undefined && last.revision < at) {
    throw new CliFailure(`stream ${stream} ends at revision ${last.revision}; --at ${at} is past its end`);
  }
  return events;
}

// ---------------------------------------------------------------------------------------------------
// Text: `<revision>  <at>  <type>  <key fields>  | <state>`

function printText(timeline: Timeline, io: CliIo): void {
  const entries: TimelineEntry<PlanSnapshot | SessionSnapshot | RunState | null>[] = timeline.entries;
  const states = stateColumn(timeline);
  const revisionWidth = String(entries.at(-1)?.event.revision ?? 0).length;
  const typeWidth = Math.max(...entries.map((e) => e.event.type.length));
  entries.forEach(({ event, skipped }, i) => {
    const columns = [
      String(event.revision).padStart(revisionWidth),
      event.metadata.at ?? '-',
      event.type.padEnd(typeWidth),
      keyFields(event),
    ].join('  ');
    const notes = `${skipped === undefined ? '' : `(not folded: ${skipped}) `}${states[i] ?? ''}`;
    io.out(notes === '' ? columns.trimEnd() : `${columns}  | ${notes}`);
  });
}

/** The state column: status and seed FSM state after each event ('' for streams we do not fold). */
function stateColumn(timeline: Timeline): string[] {
  switch (timeline.kind) {
    case 'plan':
      return timeline.entries.map(({ state }) => describePlan(state));
    case 'session':
      return timeline.entries.map(({ state }) => describeSession(state));
    case 'run':
      return timeline.entries.map(({ state }) => describeRun(state));
    case 'other':
      return timeline.entries.map(() => '');
  }
}

function describePlan(plan: PlanSnapshot): string {
  const progress = plan.progress.total > 0 ? ` progress=${plan.progress.done}/${plan.progress.total}` : '';
  return `status=${plan.status} fsm=${plan.fsm_state}${progress}`;
}

function describeRun(run: RunState): string {
  const waiting = Object.keys(run.pending).length;
  return `status=${run.status} turn=${run.turn}${waiting ? ` waiting_for=${waiting}` : ''} tokens=${run.usage.total_tokens}`;
}

function describeSession(session: SessionSnapshot): string {
  const plan = session.current_plan === null ? '' : ` plan=${session.current_plan.status ?? 'not_drafted'}`;
  return `status=${session.status} fsm=${session.fsm_state}${plan}`;
}

/** `--at N`: the full folded state at N, pretty, after the timeline. */
function printStateAt(timeline: Timeline, at: number, io: CliIo): void {
  const state = timeline.entries.at(-1)?.state ?? null;
  if (state === null) {
    io.err(`(no state: ${timeline.stream} is neither a plan nor a session stream)`);
    return;
  }
  io.out('');
  io.out(`state of ${timeline.stream} after revision ${at}:`);
  for (const line of JSON.stringify(state, null, 2).split('\n')) io.out(line);
}

// ---------------------------------------------------------------------------------------------------
// JSON: one object per event, the folded state after it included (with --at, the last line's state is
// the state at N).

function printJson(timeline: Timeline, io: CliIo): void {
  const entries: TimelineEntry<PlanSnapshot | SessionSnapshot | RunState | null>[] = timeline.entries;
  for (const { event, state, skipped } of entries) {
    io.out(
      JSON.stringify({
        stream: event.stream,
        revision: event.revision,
        position: event.position,
        id: event.id,
        at: event.metadata.at ?? null,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        state,
        ...(skipped === undefined ? {} : { skipped }),
      }),
    );
  }
}
