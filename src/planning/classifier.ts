// Classify a user message: atomic (one agent run: coder, debug or ask) or complex (a plan). The
// session's mode decides first (`plan` always plans, `direct` never does, anything else is `auto`);
// in `auto` the model decides when one is configured, and the heuristic when it is not or when its
// answer is unusable. The result says which one decided (`source`) and, after a fallback, why.
import { NoModelConfiguredError, type ChatModel, type Usage } from '../agents/model.js';
import { classifyHeuristically, type AtomicAgent } from './heuristic-classifier.js';
import { extractJsonObject } from './tolerant-json.js';

export type { AtomicAgent } from './heuristic-classifier.js';

/** What was decided: one agent's task, or a plan. */
export type Verdict = ({ kind: 'atomic'; agent: AtomicAgent } | { kind: 'complex' }) & { confidence: Confidence; reason: string };

export type Classification = Verdict & {
  source: ClassificationSource;
  /** Set when the heuristic decided in `auto` mode: why the model did not. */
  fallback?: string;
  /** Tokens the model spent, also when its answer was unusable. */
  usage?: Usage;
};

export type Confidence = 'high' | 'medium' | 'low';
export type ClassificationSource = 'llm' | 'heuristic';

/** The modes Planline gives meaning to; any other session mode behaves as `auto`. */
export type ClassificationMode = 'auto' | 'plan' | 'direct';
export const classificationMode = (mode: string | undefined): ClassificationMode =>
  mode === 'plan' || mode === 'direct' ? mode : 'auto';

export interface ClassifyInput {
  message: string;
  /** The session's mode, free-form (`planning-control`, `copilot`, … behave as `auto`). */
  mode?: string | undefined;
  /** Recent conversation, so "and now do the same for B" is read in context (last few turns). */
  conversation?: ReadonlyArray<{ role: 'user' | 'assistant'; content: string }> | undefined;
  model?: ChatModel | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

export async function classifyMessage(input: ClassifyInput): Promise<Classification> {
  const mode = classificationMode(input.mode);
  const heuristic = classifyHeuristically(input.message);
  if (mode === 'plan') {
    return { kind: 'complex', confidence: 'high', reason: 'the session is in plan mode: every task is planned', source: 'heuristic' };
  }
  if (mode === 'direct') {
    return {
      kind: 'atomic',
      agent: heuristic.agent,
      confidence: 'high',
      reason: 'the session is in direct mode: tasks run without a plan',
      source: 'heuristic',
    };
  }

  const fallback = (why: string, usage?: Usage): Classification => ({
    ...(heuristic.kind === 'atomic' ? { kind: 'atomic' as const, agent: heuristic.agent } : { kind: 'complex' as const }),
    confidence: 'low',
    reason: heuristic.reason,
    source: 'heuristic',
    fallback: why,
    ...(usage ? { usage } : {}),
  });

  if (!input.model?.configured) return fallback('no model configured');
  let content: string | null;
  let usage: Usage;
  try {
    const completion = await input.model.complete({
      messages: classificationMessages(input.message, input.conversation),
      json: true,
      temperature: 0,
      signal: input.signal,
      timeoutMs: input.timeoutMs,
    });
    content = completion.content;
    usage = completion.usage;
  } catch (error) {
    // Cancellation is not a model failure to paper over: the caller asked us to stop.
    if (input.signal?.aborted) throw error;
    if (error instanceof NoModelConfiguredError) return fallback('no model configured');
    return fallback(`the model call failed: ${(error as Error).message}`);
  }
  const parsed = parseClassification(content ?? '');
  if (!parsed.ok) return fallback(`the model's classification was unusable: ${parsed.error}`, usage);
  return { ...parsed.value, source: 'llm', usage };
}

/**
 * A model's classification in any shape the seed or a model produces: the seed's
 * `{is_atomic, agent: code|plan|debug|explain, confidence, reason}`, Planline's agent names
 * (coder|debug|ask), or `{kind|type|classification: atomic|complex}`.
 */
export function parseClassification(
  text: string,
): { ok: true; value: Verdict } | { ok: false; error: string } {
  const extracted = extractJsonObject(text);
  if (!extracted.ok) return extracted;
  const json = extracted.value;
  const reason = typeof json.reason === 'string' && json.reason.trim() ? json.reason.trim() : 'classified by the model';
  const confidence: Confidence = json.confidence === 'high' || json.confidence === 'medium' || json.confidence === 'low' ? json.confidence : 'medium';

  const agentName = typeof json.agent === 'string' ? json.agent.trim().toLowerCase() : undefined;
  const agent = agentName === undefined ? undefined : AGENT_ALIASES[agentName];
  const kindWord = [json.kind, json.type, json.classification].find((v): v is string => typeof v === 'string')?.toLowerCase();
  const atomic = readBoolean(json.is_atomic) ?? (kindWord === 'atomic' ? true : kindWord === 'complex' ? false : undefined);

  if (atomic === undefined) return { ok: false, error: 'it says neither is_atomic nor kind (atomic|complex)' };
  // The seed's rule: a task for the planner is complex whatever is_atomic says.
  if (!atomic || agent === 'plan') return { ok: true, value: { kind: 'complex', confidence, reason } };
  if (agentName === undefined) return { ok: false, error: 'an atomic task needs an agent (coder, debug or ask)' };
  if (agent === undefined) return { ok: false, error: `unknown agent ${JSON.stringify(json.agent)}; expected coder, debug or ask` };
  return { ok: true, value: { kind: 'atomic', agent, confidence, reason } };
}

const AGENT_ALIASES: Record<string, AtomicAgent | 'plan'> = {
  coder: 'coder',
  code: 'coder',
  debug: 'debug',
  ask: 'ask',
  explain: 'ask',
  plan: 'plan',
  architect: 'plan',
};

function readBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (v === 'true' || v === 'yes') return true;
    if (v === 'false' || v === 'no') return false;
  }
  return undefined;
}

export const CLASSIFIER_SYSTEM_PROMPT = `You classify tasks for a coding assistant that runs inside an IDE. Respond with one JSON object only.

A task is ATOMIC when ALL of these hold:
- it is a single clear step that ONE agent can finish;
- it touches one place (one file, one function) or is a question;
- it needs no design decisions and no exploration of several components.
Otherwise it is COMPLEX and must be planned: multi-file changes, features, new applications, migrations,
refactorings across components, anything with several steps.

Agents for atomic tasks:
- "coder": writes or changes code, files or configuration;
- "debug": investigates errors, crashes and failing tests (reads and runs, does not edit);
- "ask": answers questions and explains code or concepts.

Answer exactly in this shape:
{"is_atomic": true, "agent": "coder" | "debug" | "ask" | "plan", "confidence": "high" | "medium" | "low", "reason": "one short sentence"}
If is_atomic is false, agent must be "plan".`;

function classificationMessages(
  message: string,
  conversation: ClassifyInput['conversation'],
): Array<{ role: 'system' | 'user'; content: string }> {
  const recent = (conversation ?? []).slice(-6);
  const context = recent.length
    ? `Recent conversation (for context only):\n${recent.map((m) => `${m.role}: ${clip(m.content, 500)}`).join('\n')}\n\n`
    : '';
  return [
    { role: 'system', content: CLASSIFIER_SYSTEM_PROMPT },
    { role: 'user', content: `${context}Task to classify:\n${message}` },
  ];
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
