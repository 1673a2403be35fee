// A line the user typed, as what to do: plain text is a user message; slash commands decide the plan
// waiting for approval, cancel, switch agents, show help or quit. Pure: a line and what is pending
// in, an action out; a command that cannot be sent as typed is a `problem` and sends nothing.
import { parseApproval, type Approval, type Frame } from './tool-calls.js';

export const AGENT_TYPES = ['coder', 'debug', 'ask', 'architect', 'universal'] as const;

export type InputAction =
  | { kind: 'send'; frame: Frame }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'nothing' }
  | { kind: 'problem'; message: string }
  /** The answer to the tool call being asked about. */
  | { kind: 'answer'; approval: Approval }
  /** A line that answers neither the tool call being asked about nor anything else. */
  | { kind: 'ask_again' };

export interface InputState {
  /** The approval request of the plan waiting for the user's decision, if one is. */
  pendingApproval: string | undefined;
  /** A tool call is being asked about: the next line that is not a slash command answers it. */
  askingAboutTool?: boolean;
}

export const HELP = [
  'Type a message and press Enter to send it. Commands:',
  '  /approve              approve the plan waiting for your decision',
  '  /reject [feedback]    reject it (optionally saying why)',
  '  /modify <feedback>    ask for a revised plan',
  '  /cancel [reason]      cancel the running plan',
  `  /agent <type>         switch agent (${AGENT_TYPES.join(', ')})`,
  '  /help                 this text',
  '  /quit                 leave (the session goes on; come back with --session)',
  'When a tool call needs approval, answer y (run it), n [feedback] (refuse it) or a (run it and allow it for the rest of the session).',
];

export function parseInput(line: string, state: InputState): InputAction {
  const text = line.trim();
  if (state.askingAboutTool && !text.startsWith('/')) {
    const approval = parseApproval(text);
    return approval ? { kind: 'answer', approval } : { kind: 'ask_again' };
  }
  if (text === '') return { kind: 'nothing' };
  if (!text.startsWith('/')) return { kind: 'send', frame: { type: 'user_message', content: text, role: 'user' } };
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(text)!;
  const command = match[1]!.toLowerCase();
  const rest = match[2]!.trim();
  const decide = (decision: 'approve' | 'reject' | 'modify', feedback: string): InputAction => {
    if (state.pendingApproval === undefined) return { kind: 'problem', message: 'no plan is waiting for your decision' };
    return {
      kind: 'send',
      frame: { type: 'plan_decision', approval_request_id: state.pendingApproval, decision, ...(feedback !== '' ? { feedback } : {}) },
    };
  };
  switch (command) {
    case 'approve':
      if (rest !== '') return { kind: 'problem', message: '/approve takes no argument (did you mean /modify <feedback>?)' };
      return decide('approve', '');
    case 'reject':
      return decide('reject', rest);
    case 'modify':
      if (rest === '') return { kind: 'problem', message: '/modify needs feedback: what should the plan do differently?' };
      return decide('modify', rest);
    case 'cancel':
      return { kind: 'send', frame: { type: 'cancel', ...(rest !== '' ? { reason: rest } : {}) } };
    case 'agent': {
      const agent = rest.toLowerCase();
      if (!(AGENT_TYPES as readonly string[]).includes(agent)) {
        return { kind: 'problem', message: `/agent needs one of ${AGENT_TYPES.join(', ')}${rest !== '' ? `, not ${JSON.stringify(rest)}` : ''}` };
      }
      return { kind: 'send', frame: { type: 'switch_agent', agent_type: agent } };
    }
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
      return { kind: 'quit' };
    default:
      return { kind: 'problem', message: `unknown command /${command}` };
  }
}
