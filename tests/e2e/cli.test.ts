// The `planline` debugging CLI, run in-process through runCli against real SQLite files (and a real
// Redis for rebuild when one is reachable). The logs are written by the real command side
// (createCommands), so what replay folds is what the deciders actually produced.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openViewStore } from '../../src/adapters.js';
import { createCommandHandler } from '../../src/commands/handle.js';
import { createCommands } from '../../src/commands/service.js';
import { streams } from '../../src/events/catalog.js';
import { openSqliteEventStore, type SqliteEventStore } from '../../src/events/sqlite-store.js';
import type { StoredEvent } from '../../src/events/store.js';
import { memoryViewStore } from '../../src/projections/memory-views.js';
import { rebuild } from '../../src/projections/projector.js';
import { indexNames, viewsProjection } from '../../src/projections/views-projection.js';
import type { ViewStore } from '../../src/projections/views.js';
import { progressReporter } from '../../src/cli/progress.js';
import { runCli } from '../../src/cli/run.js';
import { REDIS_URL, serviceAvailable, uniquePrefix } from '../support/services.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);

const dir = mkdtempSync(join(tmpdir(), 'planline-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const freshDb = () => join(dir, `${randomUUID()}.db`);

// ---------------------------------------------------------------------------------------------------
// Running the CLI and reading its output.

interface CliRun {
  code: number;
  out: string[];
  err: string[];
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (line) => out.push(line), err: (line) => err.push(line), env });
  return { code, out, err };
}

const sqliteEnv = (path: string): NodeJS.ProcessEnv => ({ EVENTSTORE_URL: `sqlite:${path}` });

interface TimelineLine {
  revision: number;
  at: string;
  type: string;
  fields: string;
  state: string;
}

/** A replay text line: `<revision>  <at>  <type>  <key fields>  | <state>`. */
function parseTimelineLine(line: string): TimelineLine {
  const match = /^\s*(\d+)\s{2}(\S+)\s{2}(\w+)\s*(.*?)\s{2}\| (.*)$/.exec(line);
  if (!match) throw new Error(`not a timeline line: ${line}`);
  const [, revision, at, type, fields, state] = match as unknown as [string, string, string, string, string, string];
  return { revision: Number(revision), at, type, fields, state };
}

/** The timeline lines of a replay's output (the pretty state of --at follows a blank line). */
function timelineOf(run: CliRun): TimelineLine[] {
  const end = run.out.indexOf('');
  return (end === -1 ? run.out : run.out.slice(0, end)).map(parseTimelineLine);
}

// ---------------------------------------------------------------------------------------------------
// Realistic logs, written by the command side.

interface Scenario {
  sessionId: string;
  planId: string;
  approvalRequestId: string;
}

function commandsOn(store: SqliteEventStore) {
  const commands = createCommands(createCommandHandler(store));
  const meta = () => ({ command_id: randomUUID() });
  return { commands, meta };
}

/**
 * A session whose plan is approved and executed, with a failed attempt retried; the session is
 * suspended and resumed once while the plan awaits review and once while it runs, so its own stream
 * has events in both phases.
 */
async function executedPlan(store: SqliteEventStore): Promise<Scenario> {
  const { commands, meta } = commandsOn(store);
  const { session_id: sessionId } = await commands.startSession({ name: 'Fix login' }, meta());
  await commands.sendUserMessage(sessionId, { content: 'Users whose password contains "quotes" cannot sign in; fix it and add a regression test' }, meta());
  const plan = await commands.createPlan(
    { session_id: sessionId, goal: 'Fix login with quoted passwords', subtasks: [{ description: 'find the bug' }, { description: 'fix and test', dependencies: [0] }] },
    meta(),
  );
  const planId = plan.plan_id;
  await commands.suspendSession(sessionId, { reason: 'lunch' }, meta());
  await commands.resumeSession(sessionId, meta());
  await commands.decidePlan(planId, { approval_request_id: plan.approval_request_id, decision: 'approve' }, meta());
  await commands.onPlan(planId, { type: 'StartExecution', max_parallel: 2 }, meta());
  await commands.suspendSession(sessionId, { reason: 'meeting' }, meta());
  await commands.resumeSession(sessionId, meta());

  const step = (command: Parameters<typeof commands.onPlan>[1]) => commands.onPlan(planId, command, meta());
  await step({ type: 'DispatchSubtask', subtask_id: 'st-1', now: new Date() });
  await step({ type: 'StartSubtask', subtask_id: 'st-1', attempt: 1, run_id: 'run-1' });
  await step({ type: 'FailSubtask', subtask_id: 'st-1', attempt: 1, error: 'tests failed', now: new Date(), max_attempts: 3, backoff_ms: 0 });
  await step({ type: 'DispatchSubtask', subtask_id: 'st-1', now: new Date(Date.now() + 1_000) });
  await step({ type: 'StartSubtask', subtask_id: 'st-1', attempt: 2 });
  await step({ type: 'CompleteSubtask', subtask_id: 'st-1', attempt: 2, result: 'found it' });
  await step({ type: 'DispatchSubtask', subtask_id: 'st-2', now: new Date() });
  await step({ type: 'StartSubtask', subtask_id: 'st-2', attempt: 1 });
  await step({ type: 'CompleteSubtask', subtask_id: 'st-2', attempt: 1, result: 'fixed' });
  await commands.completeSession(sessionId, {}, meta());
  return { sessionId, planId, approvalRequestId: plan.approval_request_id };
}

/** A plan sent back with feedback, revised, then rejected (its session is started by CreatePlan). */
async function rejectedPlan(store: SqliteEventStore): Promise<Scenario> {
  const { commands, meta } = commandsOn(store);
  const plan = await commands.createPlan({ goal: 'Rewrite the parser', subtasks: [{ description: 'rewrite it all' }] }, meta());
  await commands.decidePlan(plan.plan_id, { approval_request_id: plan.approval_request_id, decision: 'modify', feedback: 'smaller steps please' }, meta());
  const revised = await commands.revisePlan(plan.plan_id, { subtasks: [{ description: 'tokenizer' }, { description: 'grammar', dependencies: [0] }], feedback: 'smaller steps please' }, meta());
  await commands.decidePlan(plan.plan_id, { approval_request_id: revised.approval_request_id, decision: 'reject', feedback: 'not now' }, meta());
  return { sessionId: plan.session_id, planId: plan.plan_id, approvalRequestId: revised.approval_request_id };
}

async function withStore<T>(path: string, work: (store: SqliteEventStore) => Promise<T>): Promise<T> {
  const store = openSqliteEventStore(path);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

async function readAllEvents(path: string): Promise<StoredEvent[]> {
  return withStore(path, async (store) => {
    const events: StoredEvent[] = [];
    for (let after = 0; ; ) {
      const page = await store.readAll({ after, maxCount: 100 });
      const last = page.at(-1);
      if (last === undefined) return events;
      events.push(...page);
      after = last.position;
    }
  });
}

// One log for the read-only tests: two scenarios, one after the other.
const logPath = freshDb();
let executed: Scenario;
let rejected: Scenario;
beforeAll(async () => {
  await withStore(logPath, async (store) => {
    executed = await executedPlan(store);
    rejected = await rejectedPlan(store);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('planline replay', () => {
  const PLAN_TIMELINE = [
    ['PlanDrafted', 'status=awaiting_approval fsm=plan_review progress=0/2'],
    ['PlanApprovalRequested', 'status=awaiting_approval fsm=plan_review progress=0/2'],
    ['PlanApproved', 'status=approved fsm=plan_execution progress=0/2'],
    ['PlanExecutionStarted', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskDispatched', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskStarted', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskFailed', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskRetryScheduled', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskDispatched', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskStarted', 'status=executing fsm=plan_execution progress=0/2'],
    ['SubtaskSucceeded', 'status=executing fsm=plan_execution progress=1/2'],
    ['SubtaskDispatched', 'status=executing fsm=plan_execution progress=1/2'],
    ['SubtaskStarted', 'status=executing fsm=plan_execution progress=1/2'],
    ['SubtaskSucceeded', 'status=executing fsm=plan_execution progress=2/2'],
    ['PlanCompleted', 'status=completed fsm=completed progress=2/2'],
  ];

  it('prints a plan stream as a timeline: revisions in order, times, types and the state after each event', async () => {
    const run = await cli(['replay', streams.plan(executed.planId)], sqliteEnv(logPath));
    expect(run.err).toEqual([]);
    expect(run.code).toBe(0);
    const lines = timelineOf(run);
    expect(lines.map((l) => [l.type, l.state])).toEqual(PLAN_TIMELINE);
    expect(lines.map((l) => l.revision)).toEqual(PLAN_TIMELINE.map((_, i) => i));
    const stored = await withStore(logPath, (store) => store.readStream(streams.plan(executed.planId)));
    expect(lines.map((l) => l.at)).toEqual(stored.map((e) => e.metadata.at));
  });

  it('shows the key fields of each event: approval and decision, subtask and attempt, truncated text', async () => {
    const lines = timelineOf(await cli(['replay', streams.plan(executed.planId)], sqliteEnv(logPath)));
    expect(lines[0]?.fields).toBe('revision=1 goal="Fix login with quoted passwords" subtasks=[2] source=client');
    expect(lines[1]?.fields).toMatch(new RegExp(`^approval_request_id=${executed.approvalRequestId} revision=1 deadline=\\S+ timeout_action=expire$`));
    expect(lines[2]?.fields).toBe(`approval_request_id=${executed.approvalRequestId} decision=approve decided_by=user`);
    expect(lines[5]?.fields).toBe('subtask_id=st-1 attempt=1 run_id=run-1');
    expect(lines[6]?.fields).toBe('subtask_id=st-1 attempt=1 error="tests failed" will_retry=true');
    expect(lines[8]?.fields).toBe('subtask_id=st-1 attempt=2');

    const session = timelineOf(await cli(['replay', streams.session(executed.sessionId)], sqliteEnv(logPath)));
    // Message content is cut to one short line; the full text is in --json.
    expect(session[1]?.fields).toBe('content="Users whose password contains \\"quotes\\" cannot sign in; fix…"');
    expect(session[2]?.fields).toBe(`kind=complex plan_id=${executed.planId} source=client`);

    const other = timelineOf(await cli(['replay', streams.plan(rejected.planId)], sqliteEnv(logPath)));
    expect(other.find((l) => l.type === 'PlanModificationRequested')?.fields).toMatch(/decision=modify feedback="smaller steps please"$/);
    expect(other.at(-1)).toMatchObject({ type: 'PlanRejected', state: 'status=rejected fsm=idle progress=0/2' });
  });

  it("shows a session's fsm_state from its plan as the plan was at each session event, not as it is now", async () => {
    const run = await cli(['replay', streams.session(executed.sessionId)], sqliteEnv(logPath));
    expect(run.code).toBe(0);
    expect(timelineOf(run).map((l) => [l.revision, l.type, l.state])).toEqual([
      [0, 'SessionStarted', 'status=active fsm=idle'],
      [1, 'UserMessageReceived', 'status=active fsm=classify'],
      // The session names its plan before the plan stream is written.
      [2, 'TaskClassified', 'status=active fsm=architect_planning plan=not_drafted'],
      [3, 'SessionSuspended', 'status=suspended fsm=plan_review plan=awaiting_approval'],
      [4, 'SessionResumed', 'status=active fsm=plan_review plan=awaiting_approval'],
      [5, 'SessionSuspended', 'status=suspended fsm=plan_execution plan=executing'],
      [6, 'SessionResumed', 'status=active fsm=plan_execution plan=executing'],
      [7, 'SessionCompleted', 'status=completed fsm=completed plan=completed'],
    ]);
  });

  it('--at N stops after revision N and prints the full folded state there', async () => {
    const run = await cli(['replay', streams.plan(executed.planId), '--at', '1'], sqliteEnv(logPath));
    expect(run.code).toBe(0);
    expect(timelineOf(run).map((l) => l.type)).toEqual(['PlanDrafted', 'PlanApprovalRequested']);
    const header = run.out.indexOf(`state of ${streams.plan(executed.planId)} after revision 1:`);
    expect(header).toBeGreaterThan(0);
    const state = JSON.parse(run.out.slice(header + 1).join('\n'));
    expect(state).toMatchObject({
      plan_id: executed.planId,
      status: 'awaiting_approval',
      fsm_state: 'plan_review',
      approvals: [{ approval_request_id: executed.approvalRequestId, status: 'pending' }],
      subtasks: [{ id: 'st-1', status: 'pending' }, { id: 'st-2', status: 'pending' }],
      progress: { done: 0, total: 2 },
    });

    const mid = await cli(['replay', streams.plan(executed.planId), '--at', '10'], sqliteEnv(logPath));
    const midState = JSON.parse(mid.out.slice(mid.out.indexOf('') + 2).join('\n'));
    expect(midState).toMatchObject({ status: 'executing', subtasks: [{ id: 'st-1', status: 'succeeded', attempt: 2 }, { id: 'st-2', status: 'pending' }] });

    const session = await cli(['replay', streams.session(executed.sessionId), '--at', '3'], sqliteEnv(logPath));
    const sessionState = JSON.parse(session.out.slice(session.out.indexOf('') + 2).join('\n'));
    expect(sessionState).toMatchObject({
      status: 'suspended',
      fsm_state: 'plan_review',
      current_plan_id: executed.planId,
      current_plan: { plan_id: executed.planId, status: 'awaiting_approval', fsm_state: 'plan_review' },
    });
  });

  it('--json prints one parseable object per event, carrying the state after it', async () => {
    const run = await cli(['replay', streams.session(executed.sessionId), '--json'], sqliteEnv(logPath));
    expect(run.code).toBe(0);
    const records = run.out.map((line) => JSON.parse(line) as Record<string, any>);
    const stored = await withStore(logPath, (store) => store.readStream(streams.session(executed.sessionId)));
    expect(records).toHaveLength(stored.length);
    records.forEach((record, i) => {
      const event = stored[i]!;
      expect(record).toMatchObject({ revision: event.revision, position: event.position, at: event.metadata.at, type: event.type, data: event.data, metadata: event.metadata });
    });
    expect(records.map((r) => [r.state.status, r.state.fsm_state, r.state.current_plan?.status ?? null])).toEqual([
      ['active', 'idle', null],
      ['active', 'classify', null],
      ['active', 'architect_planning', null],
      ['suspended', 'plan_review', 'awaiting_approval'],
      ['active', 'plan_review', 'awaiting_approval'],
      ['suspended', 'plan_execution', 'executing'],
      ['active', 'plan_execution', 'executing'],
      ['completed', 'completed', 'completed'],
    ]);

    const atTwo = await cli(['replay', streams.plan(executed.planId), '--json', '--at', '2'], sqliteEnv(logPath));
    const planRecords = atTwo.out.map((line) => JSON.parse(line) as Record<string, any>);
    expect(planRecords.map((r) => r.revision)).toEqual([0, 1, 2]);
    expect(planRecords.at(-1)?.state).toMatchObject({ status: 'approved', fsm_state: 'plan_execution', approvals: [{ status: 'approved', decision: 'approve' }] });
  });

  it('replays streams it does not fold as plain events', async () => {
    const path = freshDb();
    await withStore(path, (store) =>
      store.append('audit-42', [{ id: randomUUID(), type: 'AuditRecorded', data: { audit_id: 'audit-42', by: 'ops' }, metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: '2025-01-01T00:00:00.000Z', schema_version: 1 } }], 'no_stream'),
    );
    const run = await cli(['replay', 'audit-42'], sqliteEnv(path));
    expect(run.code).toBe(0);
    expect(run.out).toEqual(['0  2025-01-01T00:00:00.000Z  AuditRecorded  audit_id=audit-42 by=ops']);
  });

  it('fails with exit code 1 for an unknown stream, and for --at past the end', async () => {
    const unknown = await cli(['replay', 'plan-does-not-exist'], sqliteEnv(logPath));
    expect(unknown).toMatchObject({ code: 1, out: [] });
    expect(unknown.err.join('\n')).toMatch(/stream plan-does-not-exist not found/);

    const past = await cli(['replay', streams.plan(executed.planId), '--at', '99'], sqliteEnv(logPath));
    expect(past).toMatchObject({ code: 1, out: [] });
    expect(past.err.join('\n')).toMatch(/ends at revision 14; --at 99 is past its end/);
  });

  it('answers bad arguments with the usage on err and exit code 2', async () => {
    for (const argv of [['replay'], ['replay', 'a', 'b'], ['replay', 'x', '--at', 'three'], ['replay', 'x', '--at=-1'], ['replay', 'x', '--bogus'], ['frobnicate']]) {
      const run = await cli(argv, sqliteEnv(logPath));
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.out).toEqual([]);
      expect(run.err.join('\n'), argv.join(' ')).toMatch(/Usage: planline/);
    }
  });

  it('prints the usage for help and for no arguments', async () => {
    for (const argv of [[], ['help'], ['--help']]) {
      const run = await cli(argv);
      expect(run.code).toBe(0);
      expect(run.out[0]).toBe('Usage: planline <command> [options]');
      for (const command of ['replay <stream>', 'export', 'import <file>', 'rebuild']) expect(run.out.join('\n')).toContain(command);
    }
    const one = await cli(['help', 'replay']);
    expect(one.out[0]).toBe('Usage: planline replay <stream> [--at N] [--json]');
  });

  it('reports a bad EVENTSTORE_URL as a failure naming the variable', async () => {
    const run = await cli(['replay', 'plan-x'], { EVENTSTORE_URL: 'mysql://nope' });
    expect(run.code).toBe(1);
    expect(run.err.join('\n')).toMatch(/EVENTSTORE_URL/);
  });
});

describe('planline export and import', () => {
  const exported = join(dir, 'export.jsonl');
  beforeAll(async () => {
    const run = await cli(['export', '--out', exported], sqliteEnv(logPath));
    expect(run.code).toBe(0);
  });

  it('exports every stored event in log order, one JSON object per line, with a summary on err', async () => {
    const all = await readAllEvents(logPath);
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines).toEqual(all.map(({ stream, revision, position, id, type, data, metadata }) => ({ stream, revision, position, id, type, data, metadata })));
    const stdout = await cli(['export'], sqliteEnv(logPath));
    expect(stdout.out.join('\n')).toBe(readFileSync(exported, 'utf8').trimEnd());
    expect(stdout.err).toEqual([`exported ${all.length} events of 4 streams to stdout`]);
    expect(existsSync(`${exported}.partial-${process.pid}`)).toBe(false);
  });

  it('exports one stream with --stream, and fails for a stream that does not exist', async () => {
    const run = await cli(['export', '--stream', streams.plan(rejected.planId)], sqliteEnv(logPath));
    expect(run.code).toBe(0);
    const lines = run.out.map((line) => JSON.parse(line) as { stream: string; revision: number });
    expect(lines.map((l) => [l.stream, l.revision])).toEqual(lines.map((_, i) => [streams.plan(rejected.planId), i]));
    expect(lines.map((l) => (l as unknown as { type: string }).type)).toEqual([
      'PlanDrafted',
      'PlanApprovalRequested',
      'PlanModificationRequested',
      'PlanDrafted',
      'PlanApprovalRequested',
      'PlanRejected',
    ]);

    const missing = join(dir, 'missing.jsonl');
    const none = await cli(['export', '--stream', 'plan-nope', '--out', missing], sqliteEnv(logPath));
    expect(none.code).toBe(1);
    expect(none.err.join('\n')).toMatch(/plan-nope not found/);
    expect(existsSync(missing)).toBe(false);
  });

  it('imports into a fresh store reproducing identical streams, and a second import writes nothing', async () => {
    const target = freshDb();
    const first = await cli(['import', exported], sqliteEnv(target));
    expect(first.code).toBe(0);
    const source = await readAllEvents(logPath);
    expect(first.err.at(-1)).toMatch(new RegExp(`^imported ${source.length}, already present 0 `));

    const copy = await readAllEvents(target);
    const shape = ({ stream, revision, id, type, data, metadata }: StoredEvent) => ({ stream, revision, id, type, data, metadata });
    // Same events in the same global order: a session's history depends on where its plan's events fall.
    expect(copy.map(shape)).toEqual(source.map(shape));
    for (const stream of [executed, rejected].flatMap((s) => [streams.session(s.sessionId), streams.plan(s.planId)])) {
      const [a, b] = await Promise.all([withStore(logPath, (s) => s.readStream(stream)), withStore(target, (s) => s.readStream(stream))]);
      expect(b.map(shape), stream).toEqual(a.map(shape));
    }

    const second = await cli(['import', exported], sqliteEnv(target));
    expect(second.code).toBe(0);
    expect(second.err.at(-1)).toMatch(new RegExp(`^imported 0, already present ${source.length} `));
    expect(await readAllEvents(target)).toEqual(copy);

    // The copy replays like the original.
    const [original, replayed] = await Promise.all([
      cli(['replay', streams.session(executed.sessionId)], sqliteEnv(logPath)),
      cli(['replay', streams.session(executed.sessionId)], sqliteEnv(target)),
    ]);
    expect(replayed.out).toEqual(original.out);
  });

  it('finishes an interrupted import: events already there are counted, the rest appended', async () => {
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const partialFile = join(dir, 'first-half.jsonl');
    writeFileSync(partialFile, `${lines.slice(0, 10).join('\n')}\n`);
    const target = freshDb();
    expect((await cli(['import', partialFile], sqliteEnv(target))).err.at(-1)).toMatch(/^imported 10, already present 0 /);
    const rest = await cli(['import', exported], sqliteEnv(target));
    expect(rest.code).toBe(0);
    expect(rest.err.at(-1)).toMatch(new RegExp(`^imported ${lines.length - 10}, already present 10 `));
    expect((await readAllEvents(target)).map((e) => e.id)).toEqual((await readAllEvents(logPath)).map((e) => e.id));
  });

  it('refuses a file with invalid lines, naming each line, and writes nothing', async () => {
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const corrupt = [...lines];
    corrupt[4] = '{"stream": "session-x", "revision": 0,';
    const withoutId = JSON.parse(lines[8]!) as Record<string, unknown>;
    delete withoutId.id;
    corrupt[8] = JSON.stringify(withoutId);
    corrupt[11] = '[1, 2, 3]';
    const badDraft = JSON.parse(lines.find((line) => line.includes('"PlanDrafted"'))!) as { data: { subtasks: unknown[] }; revision: number };
    badDraft.data.subtasks = [];
    const draftLine = lines.findIndex((line) => line.includes('"PlanDrafted"'));
    corrupt[draftLine] = JSON.stringify(badDraft);
    const file = join(dir, 'corrupt.jsonl');
    writeFileSync(file, `${corrupt.join('\n')}\n`);

    const target = freshDb();
    const run = await cli(['import', file], sqliteEnv(target));
    expect(run.code).toBe(1);
    const message = run.err.join('\n');
    expect(message).toMatch(/4 invalid lines; nothing was imported/);
    expect(message).toMatch(new RegExp(`line ${draftLine + 1}: invalid PlanDrafted data: PlanDrafted: .*subtasks`));
    expect(message).toMatch(/line 5: malformed JSON/);
    expect(message).toMatch(/line 9: id: missing/);
    expect(message).toMatch(/line 12: expected a JSON object/);
    expect(await withStore(target, (store) => store.headPosition())).toBe(0);
  });

  it('refuses a file whose streams skip a revision, naming the line after the gap', async () => {
    const lines = readFileSync(exported, 'utf8').trimEnd().split('\n');
    const plan = streams.plan(executed.planId);
    const lineOf = (revision: number) =>
      lines.findIndex((line) => {
        const event = JSON.parse(line) as { stream: string; revision: number };
        return event.stream === plan && event.revision === revision;
      });
    const withGap = lines.filter((_, i) => i !== lineOf(3));
    const file = join(dir, 'gap.jsonl');
    writeFileSync(file, withGap.join('\n'));
    const target = freshDb();
    const run = await cli(['import', file], sqliteEnv(target));
    expect(run.code).toBe(1);
    // Line numbers are 1-based and counted in the file as written (revision 4 moved up one line).
    expect(run.err).toEqual([
      `planline import: ${file}: 1 invalid line; nothing was imported`,
      `  line ${lineOf(4)}: stream ${plan} revision 4 follows revision 2; expected 3`,
    ]);
    expect(await withStore(target, (store) => store.headPosition())).toBe(0);
  });

  it('stops at the first stream whose events differ from what the target store holds', async () => {
    const target = freshDb();
    const sessionStream = streams.session(executed.sessionId);
    await withStore(target, (store) =>
      store.append(sessionStream, [{ id: randomUUID(), type: 'SessionStarted', data: { session_id: executed.sessionId, name: 'other', mode: 'auto', agent_type: 'universal' }, metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: '2025-01-01T00:00:00.000Z', schema_version: 1 } }], 'no_stream'),
    );
    const run = await cli(['import', exported], sqliteEnv(target));
    expect(run.code).toBe(1);
    expect(run.err.join('\n')).toMatch(new RegExp(`line 1: stream ${sessionStream} revision 0: the target store holds different events`));
    expect(await withStore(target, (store) => store.headPosition())).toBe(1);
  });

  it('answers a missing file with exit code 1 and a missing argument with exit code 2', async () => {
    expect((await cli(['import', join(dir, 'nope.jsonl')], sqliteEnv(freshDb()))).code).toBe(1);
    expect((await cli(['import'], sqliteEnv(freshDb()))).code).toBe(2);
  });
});

describe('planline rebuild', () => {
  /** Every document the views projection writes for the log's sessions and plans, by collection and id. */
  async function documentsOf(views: ViewStore): Promise<Record<string, unknown>> {
    const docs: Record<string, unknown> = {};
    for (const scenario of [executed, rejected]) {
      docs[`sessions/${scenario.sessionId}`] = await views.get('sessions', scenario.sessionId);
      docs[`plans/${scenario.planId}`] = await views.get('plans', scenario.planId);
      docs[`approvals/${scenario.approvalRequestId}`] = await views.get('approvals', scenario.approvalRequestId);
      const history = await views.range(indexNames.history(scenario.sessionId), { limit: 1_000 });
      docs[`history/${scenario.sessionId}`] = await views.getMany('history', history.map((m) => m.id));
    }
    return docs;
  }

  async function projectedInMemory(): Promise<Record<string, unknown>> {
    const views = memoryViewStore();
    await withStore(logPath, (store) => rebuild({ store, views, projection: viewsProjection }));
    return documentsOf(views);
  }

  it('with REDIS_URL unset rebuilds the embedded read models beside the log file', async () => {
    const run = await cli(['rebuild'], sqliteEnv(logPath));
    expect(run.code).toBe(0);
    const total = (await readAllEvents(logPath)).length;
    expect(run.err[0]).toMatch(/in the embedded read models beside the log/);
    expect(run.err.find((line) => line.startsWith('rebuilt views'))).toMatch(new RegExp(`^rebuilt views v${viewsProjection.version} in sqlite: ${total} events up to position ${total} in [\\d.]+ s \\(\\d+ events/s\\); sessions=2 plans=2 approvals=3 history=${total}$`));
    expect(run.err.at(-1)).toMatch(new RegExp(`^rebuilt feed v\\d+ in sqlite: ${total} events in [\\d.]+ s$`));
  });

  it('fails clearly when Redis cannot be reached', async () => {
    const run = await cli(['rebuild'], { ...sqliteEnv(logPath), REDIS_URL: 'redis://127.0.0.1:1' });
    expect(run.code).toBe(1);
    expect(run.err.join('\n')).toMatch(/cannot reach Redis at 127\.0\.0\.1:1/);
  });

  describe.skipIf(!redisUp)('into Redis', () => {
    const prefix = uniquePrefix('cli-rebuild');
    afterAll(async () => {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.unlink(...keys);
      await redis.quit();
    });

    it('yields the same plan, session, approval and history documents as a fresh projection', async () => {
      const run = await cli(['rebuild', '--key-prefix', prefix], { ...sqliteEnv(logPath), REDIS_URL });
      expect(run.err.join('\n')).not.toMatch(/Error/);
      expect(run.code).toBe(0);
      expect(run.err.find((line) => line.startsWith('rebuilt views'))).toMatch(/^rebuilt views v\d+ in redis: \d+ events .* sessions=2 plans=2 approvals=3 history=\d+$/);
      expect(run.err.at(-1)).toMatch(/^rebuilt feed v\d+ in redis: \d+ events in [\d.]+ s$/);

      const opened = await openViewStore({ redisUrl: REDIS_URL, keyPrefix: prefix });
      try {
        const inRedis = await documentsOf(opened.views);
        expect(Object.values(inRedis).every((doc) => doc !== undefined)).toBe(true);
        expect(inRedis).toEqual(await projectedInMemory());
        const head = await withStore(logPath, (store) => store.headPosition());
        expect(await opened.views.checkpoint(viewsProjection.name)).toEqual({ position: head, version: viewsProjection.version });
      } finally {
        await opened.views.close();
      }
    });

    it('replaces stale documents: a rebuild over damaged views restores them', async () => {
      const opened = await openViewStore({ redisUrl: REDIS_URL, keyPrefix: prefix });
      try {
        await opened.views.commit('scratch', [{ op: 'put', collection: 'plans', id: executed.planId, doc: { plan_id: executed.planId, status: 'wrong' } }], 1);
        expect(await opened.views.get('plans', executed.planId)).toMatchObject({ status: 'wrong' });
        const run = await cli(['rebuild', '--key-prefix', prefix], { ...sqliteEnv(logPath), REDIS_URL });
        expect(run.code).toBe(0);
        expect(await documentsOf(opened.views)).toEqual(await projectedInMemory());
      } finally {
        await opened.views.close();
      }
    });
  });
});

describe('progress lines', () => {
  it('prints at most once a second, or every 50k events, with the rate since the last line', () => {
    const lines: string[] = [];
    let now = 0;
    const progress = progressReporter((line) => lines.push(line), 'rebuild', { now: () => now });
    now = 500;
    progress.update(2_000);
    expect(lines).toEqual([]);
    now = 1_000;
    progress.update(4_000, 'position 4000');
    expect(lines).toEqual(['rebuild: 4000 events, position 4000 (4000 events/s)']);
    now = 1_100;
    progress.update(54_000);
    expect(lines.at(-1)).toBe('rebuild: 54000 events (500000 events/s)');
    now = 1_200;
    progress.update(55_000);
    expect(lines).toHaveLength(2);
  });
});
