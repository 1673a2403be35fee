// `planline chat`: the terminal stand-in for the IDE. It opens the session's socket (a new session
// unless --session), prints what the server sends, sends what the user types, and runs the agents'
// tool calls in --workspace, asking first where the server says a call needs approval (unless --yes).
import { clearLine, cursorTo } from 'node:readline';
import { CliFailure } from '../errors.js';
import type { CliIo } from '../io.js';
import { pendingAfter, type PendingApproval } from './approval-state.js';
import { feedSocket } from './connection.js';
import { lineInput } from './input.js';
import type { ChatOptions } from './options.js';
import { renderFrame } from './render.js';
import { HELP, parseInput } from './slash.js';
import { toolDesk, type Approval, type Frame, type ToolCall } from './tool-calls.js';
import { toolRunner } from './tools.js';
import { openWorkspace } from './workspace.js';

export interface ChatDeps {
  /** How long to wait after stdin ends for answers to go out and replies to arrive (ms). */
  graceMs?: number;
  /** Reconnect backoff, for tests. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

const PROMPT = '> ';

export async function runChat(options: ChatOptions, io: CliIo, deps: ChatDeps = {}): Promise<number> {
  const stdin = io.stdin;
  if (!stdin) throw new CliFailure('chat needs standard input');
  const tty = io.stdin?.isTTY === true && io.stdout !== undefined;
  const workspace = openWorkspace(options.workspace);
  const run = toolRunner(workspace);
  // On a terminal a line printed while the user types first clears the prompt (redrawn after it).
  const terminal = tty ? io.stdout : undefined;
  const clearPrompt = () => {
    if (terminal) {
      clearLine(terminal, 0);
      cursorTo(terminal, 0);
    }
  };
  const out = (line: string) => {
    clearPrompt();
    io.out(line);
  };
  const say = (line: string) => {
    clearPrompt();
    (options.json ? io.err : io.out)(line);
  };
  const warn = (line: string) => {
    clearPrompt();
    io.err(line);
  };

  let pending: PendingApproval | undefined;
  const autoApproved = new Set<string>();
  let announced = false;
  /** Tool calls waiting for the user's y/n/a, oldest first (the desk asks one at a time). */
  const asking: Array<{ call: ToolCall; answer: (approval: Approval) => void; abandon: (error: Error) => void }> = [];

  const socket = feedSocket({
    url: options.url,
    session: options.session,
    token: options.token,
    onFrame,
    onNotice: warn,
    ...(deps.initialDelayMs !== undefined ? { initialDelayMs: deps.initialDelayMs } : {}),
    ...(deps.maxDelayMs !== undefined ? { maxDelayMs: deps.maxDelayMs } : {}),
  });

  const desk = toolDesk({
    run,
    autoApprove: options.yes,
    send: (frame) => socket.send(frame),
    note: say,
    ask: (call) =>
      new Promise<Approval>((answer, abandon) => {
        asking.push({ call, answer, abandon });
        say(`Run ${call.tool_name} ${JSON.stringify(call.arguments)}? [y] yes  [n <feedback>] no  [a] always for this session`);
        input?.prompt(`${call.tool_name}? (y/n/a) `);
      }),
  });

  function onFrame(frame: Frame): void {
    if (options.json) out(JSON.stringify(frame));
    else for (const line of renderFrame(frame)) out(line);

    if (frame.type === 'session_info' && !announced && typeof frame.session_id === 'string') {
      announced = true;
      if (options.session === undefined) say(`Session ${frame.session_id} started; come back to it with: planline chat --session ${frame.session_id}`);
    }
    pending = pendingAfter(pending, frame);
    if (options.yes && pending && !autoApproved.has(pending.approval_request_id)) {
      autoApproved.add(pending.approval_request_id);
      say('approving the plan (--yes)');
      socket.send({ type: 'plan_decision', approval_request_id: pending.approval_request_id, decision: 'approve' });
    }
    if (frame.type === 'tool_call') desk.take(frame);
    // Joining a session: the snapshot lists the tool calls already waiting for an IDE to run them.
    if (frame.type === 'snapshot') for (const call of pendingToolCalls(frame)) desk.take(call);
    input?.prompt();
  }

  let input: ReturnType<typeof lineInput> | undefined;
  say(`Connecting to ${options.url}; tool calls run in ${workspace.root}${options.yes ? ' without asking (--yes)' : ''}. Type /help for commands.`);
  try {
    await socket.open();
  } catch (error) {
    throw new CliFailure((error as Error).message);
  }

  const outcome = await new Promise<{ code: number; why?: string }>((finish) => {
    input = lineInput(stdin, { tty, ...(io.stdout ? { output: io.stdout } : {}) });
    input.onLine((line) => {
      const action = parseInput(line, { pendingApproval: pending?.approval_request_id, askingAboutTool: asking.length > 0 });
      switch (action.kind) {
        case 'answer':
          asking.shift()?.answer(action.approval);
          return input?.prompt(PROMPT);
        case 'ask_again':
          say('Answer y (run it), n [feedback] (refuse it) or a (run it and allow it for the rest of the session).');
          break;
        case 'send':
          socket.send(action.frame);
          break;
        case 'help':
          for (const text of HELP) say(text);
          break;
        case 'problem':
          say(action.message);
          for (const text of HELP) say(text);
          break;
        case 'quit':
          return finish({ code: 0 });
        case 'nothing':
          break;
      }
      input?.prompt();
    });
    input.onEnd(() => {
      // Nobody is left to answer: the calls still waiting stay unanswered (the server's deadline decides).
      for (const waiting of asking.splice(0)) waiting.abandon(new Error('left unanswered: the input ended'));
      const grace = deps.graceMs ?? 500;
      void desk
        .idle()
        .then(() => new Promise((resolve) => setTimeout(resolve, grace)))
        .then(() => finish({ code: 0 }));
    });
    void socket.lost.then((why) => finish({ code: 1, why }));
    input.prompt(PROMPT);
  });

  input?.close();
  await socket.flushed();
  await socket.close();
  if (outcome.why) {
    warn(`planline chat: ${outcome.why}`);
    const id = socket.sessionId();
    if (id) warn(`the session is ${id}; come back to it with --session ${id}`);
  }
  return outcome.code;
}

/** The tool calls a snapshot says are waiting for an answer (tool_call frames), if any. */
function pendingToolCalls(frame: Record<string, unknown>): Array<Record<string, unknown> & { type: string }> {
  const metadata = frame.metadata;
  if (typeof metadata !== 'object' || metadata === null) return [];
  const calls = (metadata as Record<string, unknown>).pending_tool_calls;
  if (!Array.isArray(calls)) return [];
  return calls.filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null).map((c) => ({ ...c, type: 'tool_call' }));
}
