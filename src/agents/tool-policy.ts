// Which tool calls the user must approve. Pure: a policy (plain JSON, kept per session) and a call in,
// a decision out; changes return a new policy. The seed's default asks before anything that changes
// the project (write_file, delete_file, move_file, create_directory, execute_command) and not before
// reads (read_file, list_files, search_in_code). A session may auto-approve tools, allow or deny
// commands by prefix (the longest matching prefix wins; a denied command is refused without asking),
// and remember approvals ("allow this tool / this command for the rest of the session").
//
// Commands are judged per segment: `npm test && rm -rf /` is two commands, and an allowed `npm test`
// does not carry `rm -rf /` through. Redirections and substitutions (`>`, `$(…)`, backticks) can hide
// a write or another command, so an allow rule never waves them through; the user is asked.
import * as v from 'valibot';
import { invalid } from '../commands/errors.js';
import { canonicalToolName, TOOL_NAMES, type ToolName } from './tools.js';

export interface ToolPolicy {
  /** Tools whose calls need the user's approval unless a rule below says otherwise. */
  requires_approval: readonly ToolName[];
  /** Tools this session runs without asking. */
  auto_approve: readonly ToolName[];
  /** execute_command rules by command prefix (whole words): the longest match wins, deny on a tie. */
  commands: { allow: readonly string[]; deny: readonly string[] };
  /** Approvals the user asked to remember (hitl_decision with remember: true). */
  remembered: { tools: readonly ToolName[]; command_prefixes: readonly string[] };
}

export const DEFAULT_TOOL_POLICY: ToolPolicy = {
  requires_approval: ['write_file', 'delete_file', 'move_file', 'create_directory', 'execute_command'],
  auto_approve: [],
  commands: { allow: [], deny: [] },
  remembered: { tools: [], command_prefixes: [] },
};

export type ToolDecision =
  /** Send it to the IDE to run without asking. */
  | { action: 'run'; requires_approval: false; reason: string }
  /** Send it to the IDE, which asks the user first. */
  | { action: 'ask'; requires_approval: true; reason: string }
  /** Do not send it: the refusal is the tool's answer to the model. */
  | { action: 'refuse'; requires_approval: false; reason: string };

const run = (reason: string): ToolDecision => ({ action: 'run', requires_approval: false, reason });
const ask = (reason: string): ToolDecision => ({ action: 'ask', requires_approval: true, reason });
const refuse = (reason: string): ToolDecision => ({ action: 'refuse', requires_approval: false, reason });

export function decideToolCall(policy: ToolPolicy, tool: string, args: Readonly<Record<string, unknown>>): ToolDecision {
  const name = canonicalToolName(tool);
  if (!name) return refuse(`unknown tool ${JSON.stringify(tool)}`);

  if (name === 'execute_command') {
    const command = typeof args.command === 'string' ? args.command : '';
    const verdict = judgeCommand(policy, command);
    if (verdict.denied) return refuse(`the command is denied by this session's policy (rule "${verdict.denied.rule}" matches "${verdict.denied.segment}")`);
    if (verdict.allowed) return run(verdict.allowed);
  }
  if (policy.remembered.tools.includes(name)) return run(`${name} was approved for the rest of the session`);
  if (policy.auto_approve.includes(name)) return run(`${name} is auto-approved in this session`);
  if (policy.requires_approval.includes(name)) {
    return ask(name === 'execute_command' ? 'commands need approval unless an allow rule matches' : `${name} changes the project`);
  }
  return run(`${name} does not change the project`);
}

interface CommandVerdict {
  denied?: { rule: string; segment: string };
  /** Why every part of the command may run without asking; undefined when the user must be asked. */
  allowed?: string;
}

function judgeCommand(policy: ToolPolicy, command: string): CommandVerdict {
  const { segments, hidden } = splitCommand(command);
  if (segments.length === 0) return {};
  const allowRules = [
    ...policy.commands.allow.map((rule) => ({ rule, why: `allowed by rule "${rule}"` })),
    ...policy.remembered.command_prefixes.map((rule) => ({ rule, why: `"${rule}" was approved for the rest of the session` })),
  ];
  const reasons: string[] = [];
  let everyPartAllowed = true;
  for (const segment of segments) {
    const deny = longestMatch(policy.commands.deny, segment);
    const allow = longestMatch(
      allowRules.map((r) => r.rule),
      segment,
    );
    // The longest prefix wins; on a tie the deny rule does (the safe reading).
    if (deny && (!allow || words(deny).length >= words(allow).length)) return { denied: { rule: deny, segment } };
    if (allow) reasons.push(allowRules.find((r) => r.rule === allow)!.why);
    else everyPartAllowed = false;
  }
  if (!everyPartAllowed || hidden) return {};
  return { allowed: [...new Set(reasons)].join('; ') };
}

function longestMatch(rules: readonly string[], segment: string): string | undefined {
  const segmentWords = words(segment);
  let best: string | undefined;
  for (const rule of rules) {
    const ruleWords = words(rule);
    if (ruleWords.length === 0 || ruleWords.length > segmentWords.length) continue;
    if (ruleWords.every((word, i) => word === segmentWords[i]) && (!best || ruleWords.length > words(best).length)) best = rule;
  }
  return best;
}

const words = (text: string): string[] => text.trim().split(/\s+/).filter(Boolean);

/**
 * A command line cut at the shell's control operators (&&, ||, ;, |, &, newlines), outside quotes,
 * with whitespace normalized; `hidden` when it redirects or substitutes (>, <, $(…), backticks).
 */
export function splitCommand(command: string): { segments: string[]; hidden: boolean } {
  const segments: string[] = [];
  let current = '';
  let quote: '"' | "'" | undefined;
  let hidden = false;
  const push = () => {
    const segment = words(current).join(' ');
    if (segment) segments.push(segment);
    current = '';
  };
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      current += ch;
      continue;
    }
    if (ch === '\\') {
      current += ch + (command[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch === '`' || (ch === '$' && command[i + 1] === '(')) hidden = true;
    if (quote === '"') {
      if (ch === '"') quote = undefined;
      current += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
      continue;
    }
    if (ch === '>' || ch === '<') hidden = true;
    if (ch === ';' || ch === '\n' || ch === '|' || ch === '&') {
      // `2>&1` is a redirection (already marked hidden), not a background operator.
      if (ch === '&' && command[i - 1] === '>') {
        current += ch;
        continue;
      }
      push();
      if ((ch === '|' || ch === '&') && command[i + 1] === ch) i++;
      continue;
    }
    current += ch;
  }
  push();
  return { segments, hidden };
}

/**
 * The prefix remembered for a command: its first two words ("npm test", "git status", "rm -rf"), and
 * the third after a runner ("npm run build", "npx prisma migrate" → "npx prisma"). What is remembered
 * is approved for every command that starts with the same words.
 */
export function commandPrefixOf(segment: string): string {
  const parts = words(segment);
  const runner = parts[1] !== undefined && ['run', 'exec', 'x', 'dlx'].includes(parts[1]);
  return parts.slice(0, runner ? 3 : 2).join(' ');
}

/**
 * The policy after the user approved `tool` with "remember": the tool for the rest of the session,
 * or for execute_command the prefix of each part of the command (never the whole tool).
 */
export function rememberApproval(policy: ToolPolicy, tool: string, args: Readonly<Record<string, unknown>>): ToolPolicy {
  const name = canonicalToolName(tool);
  if (!name) return policy;
  if (name === 'execute_command') {
    const command = typeof args.command === 'string' ? args.command : '';
    const prefixes = splitCommand(command).segments.map(commandPrefixOf).filter(Boolean);
    return rememberCommandPrefixes(policy, prefixes);
  }
  if (policy.remembered.tools.includes(name)) return policy;
  return { ...policy, remembered: { ...policy.remembered, tools: [...policy.remembered.tools, name] } };
}

export function rememberCommandPrefixes(policy: ToolPolicy, prefixes: readonly string[]): ToolPolicy {
  const added = prefixes.map((p) => words(p).join(' ')).filter((p) => p && !policy.remembered.command_prefixes.includes(p));
  if (added.length === 0) return policy;
  return { ...policy, remembered: { ...policy.remembered, command_prefixes: [...policy.remembered.command_prefixes, ...new Set(added)] } };
}

/** A change to a session's policy, as the HTTP API takes it: each list given replaces the current one. */
export interface ToolPolicyChange {
  requires_approval?: readonly ToolName[] | undefined;
  auto_approve?: readonly ToolName[] | undefined;
  commands?: { allow?: readonly string[] | undefined; deny?: readonly string[] | undefined } | undefined;
  /** Forget remembered approvals. */
  reset_remembered?: boolean | undefined;
}

export function changeToolPolicy(policy: ToolPolicy, change: ToolPolicyChange): ToolPolicy {
  return {
    requires_approval: change.requires_approval ? unique(change.requires_approval) : policy.requires_approval,
    auto_approve: change.auto_approve ? unique(change.auto_approve) : policy.auto_approve,
    commands: {
      allow: change.commands?.allow ? unique(change.commands.allow.map(normalizePrefix)) : policy.commands.allow,
      deny: change.commands?.deny ? unique(change.commands.deny.map(normalizePrefix)) : policy.commands.deny,
    },
    remembered: change.reset_remembered ? { tools: [], command_prefixes: [] } : policy.remembered,
  };
}

const unique = <T>(items: readonly T[]): T[] => [...new Set(items)];
const normalizePrefix = (prefix: string) => words(prefix).join(' ');

const toolName = v.pipe(
  v.string(),
  v.transform((name) => canonicalToolName(name) ?? name),
  v.picklist(TOOL_NAMES, `a tool name (${TOOL_NAMES.join(', ')})`),
);
const prefix = v.pipe(v.string(), v.trim(), v.minLength(1, 'a command prefix must not be empty'), v.maxLength(500));

export const toolPolicyChangeSchema = v.strictObject({
  requires_approval: v.optional(v.array(toolName)),
  auto_approve: v.optional(v.array(toolName)),
  commands: v.optional(v.strictObject({ allow: v.optional(v.array(prefix)), deny: v.optional(v.array(prefix)) })),
  reset_remembered: v.optional(v.boolean()),
});

/** Validate a policy change from the outside world; a bad one is a 400 that says what is wrong. */
export function parseToolPolicyChange(input: unknown): ToolPolicyChange {
  const result = v.safeParse(toolPolicyChangeSchema, input);
  if (!result.success) throw invalid(`invalid tool policy: ${v.summarize(result.issues)}`);
  return result.output;
}
