// A tool call frame in, the frames that answer it out. The IDE's rules: a call that needs approval is
// asked about first — approved, it is answered `hitl_decision approve` and then run; rejected, it is
// answered `hitl_decision reject` (with the user's feedback) and nothing runs; "always" approves with
// `remember: true`. A call that needs no approval runs at once. A call whose frame cannot be read is
// answered with an error when it has a call_id, and skipped when it has none.

import type { ToolOutcome, ToolRunner } from './tools.js';

export type Frame = Record<string, unknown> & { type: string };

export interface ToolCall {
  call_id: string;
  tool_name: string;
  arguments: Record<string, unknown>;
  requires_approval: boolean;
}

/** The user's answer to "run this?". */
export type Approval = { decision: 'approve'; remember: boolean } | { decision: 'reject'; feedback?: string };

/** A tool_call frame as a call, or why it cannot be one. */
export function readToolCall(frame: Frame): { call: ToolCall } | { problem: string; call_id?: string } {
  const call_id = typeof frame.call_id === 'string' && frame.call_id !== '' ? frame.call_id : undefined;
  if (call_id === undefined) return { problem: 'the tool call has no call_id' };
  if (typeof frame.tool_name !== 'string' || frame.tool_name === '') return { problem: 'the tool call has no tool_name', call_id };
  let args: unknown = frame.arguments ?? {};
  // Some servers send arguments as a JSON string (as OpenAI returns them).
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return { problem: 'the arguments are not valid JSON', call_id };
    }
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return { problem: 'the arguments are not a JSON object', call_id };
  return { call: { call_id, tool_name: frame.tool_name, arguments: args as Record<string, unknown>, requires_approval: frame.requires_approval === true } };
}

/** "y", "n [feedback]", "a" (and their long forms) as an approval; undefined for anything else. */
export function parseApproval(line: string): Approval | undefined {
  const match = /^\s*(\S+)\s*([\s\S]*)$/.exec(line);
  if (!match) return undefined;
  const word = match[1]!.toLowerCase();
  const rest = match[2]!.trim();
  if (['y', 'yes', 'approve'].includes(word) && rest === '') return { decision: 'approve', remember: false };
  if (['a', 'always'].includes(word) && rest === '') return { decision: 'approve', remember: true };
  if (['n', 'no', 'reject'].includes(word)) return rest === '' ? { decision: 'reject' } : { decision: 'reject', feedback: rest };
  return undefined;
}

export const hitlDecision = (call: ToolCall, approval: Approval): Frame =>
  approval.decision === 'approve'
    ? { type: 'hitl_decision', call_id: call.call_id, decision: 'approve', ...(approval.remember ? { remember: true } : {}) }
    : { type: 'hitl_decision', call_id: call.call_id, decision: 'reject', ...(approval.feedback ? { feedback: approval.feedback } : {}) };

export const toolResult = (call_id: string, tool_name: string | undefined, outcome: ToolOutcome): Frame => ({
  type: 'tool_result',
  call_id,
  ...(tool_name !== undefined ? { tool_name } : {}),
  ...('error' in outcome ? { error: outcome.error } : { result: outcome.result }),
});

/**
 * The frames answering one tool call, in the order they go out. `approval` is the user's answer for a
 * call that requires one (ignored for one that does not; undefined there means "not asked": approve).
 * `emit` sees each frame as soon as it is decided (the decision goes out before the tool runs).
 */
export async function answerToolCall(frame: Frame, approval: Approval | undefined, run: ToolRunner, emit: (frame: Frame) => void = () => {}): Promise<Frame[]> {
  const out: Frame[] = [];
  const push = (answer: Frame) => {
    out.push(answer);
    emit(answer);
  };
  const read = readToolCall(frame);
  if ('problem' in read) {
    if (read.call_id !== undefined) push(toolResult(read.call_id, typeof frame.tool_name === 'string' ? frame.tool_name : undefined, { error: read.problem }));
    return out;
  }
  const { call } = read;
  if (call.requires_approval) {
    const answer = approval ?? { decision: 'approve', remember: false };
    push(hitlDecision(call, answer));
    if (answer.decision === 'reject') return out;
  }
  push(toolResult(call.call_id, call.tool_name, await run(call.tool_name, call.arguments)));
  return out;
}

/**
 * The calls of one chat: each answered once, whatever the socket replays (reconnects, resyncs), and
 * the ones that need the user asked one at a time, in arrival order.
 */
export interface ToolDesk {
  /** Take a tool_call frame: answered in the background; a call_id seen before is ignored (false). */
  take(frame: Frame): boolean;
  /** Resolves once every call taken so far is answered. */
  idle(): Promise<void>;
  /** Calls waiting for the user (the one being asked included). */
  waiting(): number;
}

export interface DeskDeps {
  run: ToolRunner;
  /** Ask the user about a call; resolves with the answer. Never called with --yes. */
  ask(call: ToolCall): Promise<Approval>;
  /** Send answer frames (queued while the socket is down). */
  send(frame: Frame): void;
  /** Tell the user what happened (a call skipped, run, refused). */
  note(line: string): void;
  autoApprove: boolean;
}

export function toolDesk(deps: DeskDeps): ToolDesk {
  const seen = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  // The prompts, one at a time in arrival order; running an approved call does not hold up the next prompt.
  let prompts: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  return {
    take(frame) {
      const read = readToolCall(frame);
      const id = 'call' in read ? read.call.call_id : read.call_id;
      if (id !== undefined) {
        if (seen.has(id)) return false;
        seen.add(id);
      }
      let approval: Promise<Approval | undefined> = Promise.resolve(undefined);
      if ('call' in read && read.call.requires_approval && !deps.autoApprove) {
        const call = read.call;
        waiting += 1;
        approval = prompts.then(() => deps.ask(call)).finally(() => void (waiting -= 1));
        prompts = approval.catch(() => undefined);
      }
      const answered = approval
        .then((answer) =>
          answerToolCall(
            frame,
            answer,
            (tool, args) => {
              deps.note(`running ${tool} (${id})…`);
              return deps.run(tool, args);
            },
            (out) => {
              deps.send(out);
              deps.note(describeAnswer(out));
            },
          ),
        )
        .then(
          () => undefined,
          (error: unknown) => deps.note(`tool call ${id ?? '(no id)'} failed: ${String(error)}`),
        );
      inFlight.add(answered);
      void answered.finally(() => inFlight.delete(answered));
      return true;
    },
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    waiting: () => waiting,
  };
}

function describeAnswer(frame: Frame): string {
  if (frame.type === 'hitl_decision') return `→ ${frame.decision === 'approve' ? 'approved' : 'rejected'} ${frame.call_id}${frame.remember ? ' (remembered for this session)' : ''}`;
  if (typeof frame.error === 'string') return `→ ${frame.call_id} failed: ${firstLine(frame.error)}`;
  return `→ ${frame.call_id} done`;
}

const firstLine = (text: string) => text.split('\n', 1)[0] ?? '';
