// Without a model (or when the model fails) a message is still classified: atomic for one agent, or
// complex for a plan. Word lists, not intelligence, but tuned to the messages an IDE user types and
// always available. `pickAgent` is shared with the heuristic planner, which assigns each of its
// subtasks the same way.
import { splitTask } from './task-splitter.js';

export type AtomicAgent = 'coder' | 'debug' | 'ask';

export interface HeuristicVerdict {
  kind: 'atomic' | 'complex';
  agent: AtomicAgent;
  reason: string;
}

const QUESTION_START =
  /^(what|why|how|when|where|which|who|is|are|does|do|can|could|should|would|explain|describe|tell me|show me how|what's|whats)\b/;
const ASK_WORDS = /\b(explain|what is|what are|what does|how does|how do|difference between|meaning of|tell me about|describe)\b/;
const DEBUG_WORDS =
  /\b(debug|error|errors|exception|stack ?trace|traceback|crash(es|ed|ing)?|fails?|failing|failed|broken|not working|doesn't work|does not work|investigate|diagnose|segfault|panic|hangs?|flaky|regression|root cause)\b/;
const COMPLEX_WORDS =
  /\b(application|app|system|feature|architecture|design|end[- ]to[- ]end|from scratch|multiple files|several (files|components|modules)|whole (project|codebase)|entire (project|codebase)|migrate|migration|full implementation|complete implementation|set up a|scaffold|microservices?|with (login|registration|authentication|auth))\b/;
const LIST_LINE = /^\s*(?:[-*•]|\d+[.)])\s+\S/;

/** The agent for one piece of work: a question → ask, a failure to investigate → debug, else coder. */
export function pickAgent(text: string): AtomicAgent {
  const lower = text.toLowerCase().trim();
  // "Fix the crash in X" is work for the coder; "why does X crash" is for debug.
  const isQuestion = lower.endsWith('?') || QUESTION_START.test(lower);
  if (DEBUG_WORDS.test(lower) && !/^(fix|repair|patch|resolve)\b/.test(lower)) return 'debug';
  if (ASK_WORDS.test(lower) || (isQuestion && !/\b(add|create|implement|write|build|refactor|change|update)\b/.test(lower))) return 'ask';
  return 'coder';
}

export function classifyHeuristically(message: string): HeuristicVerdict {
  const text = message.trim();
  const lower = text.toLowerCase();
  const agent = pickAgent(text);

  // Several pieces of work make a plan, unless they are all questions ("What is X? How does Y work?").
  const pieces = splitTask(text);
  if (pieces.length >= 2 && !pieces.every((p) => pickAgent(p.text) === 'ask')) {
    const listItems = text.split(/\r?\n/).filter((line) => LIST_LINE.test(line)).length;
    return {
      kind: 'complex',
      agent,
      reason: listItems >= 2 ? `the message lists ${listItems} steps` : `the message asks for ${pieces.length} pieces of work`,
    };
  }
  if (agent === 'ask') return { kind: 'atomic', agent, reason: 'a question: answered directly' };
  const match = COMPLEX_WORDS.exec(lower);
  if (match) return { kind: 'complex', agent, reason: `"${match[0]}" suggests work across several parts` };

  const words = lower.split(/\s+/).filter(Boolean).length;
  if (words > 40) return { kind: 'complex', agent, reason: `a long request (${words} words)` };
  return { kind: 'atomic', agent, reason: agent === 'debug' ? 'a single problem to investigate' : 'a single change' };
}
