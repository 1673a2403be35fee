// The model architect: a task (with the user's feedback, or after a failure the finished results and
// the failure) becomes a plan. The model answers JSON; we read it tolerantly (fences, prose around it,
// the seed's shapes, estimates as seconds or strings) and then validate it EXACTLY like a client
// CreatePlan (normalizeSubtasks: ids, agents, known dependencies, no cycles). A plan that fails that,
// or a model that fails, gives way to the heuristic planner, and the result says so.
import { NoModelConfiguredError, type ChatMessage, type ChatModel, type Usage } from '../agents/model.js';
import { parseDuration } from '../commands/duration.js';
import { normalizeSubtasks, type SubtaskInput } from '../commands/dag.js';
import { DomainError, invalidPlan } from '../commands/errors.js';
import type { AgentType } from '../events/catalog.js';
import { planHeuristically } from './heuristic-planner.js';
import type { DraftedPlan, PlanRequest } from './plan-request.js';
import { extractJson } from './tolerant-json.js';

export type { DraftedPlan, PlanRequest, PreviousSubtask } from './plan-request.js';

export interface ArchitectOptions {
  model?: ChatModel | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

export async function draftPlan(request: PlanRequest, options: ArchitectOptions = {}): Promise<DraftedPlan> {
  const heuristic = (fallback: string, usage?: Usage): DraftedPlan => ({
    ...planHeuristically(request),
    fallback,
    ...(usage ? { usage } : {}),
  });
  const { model } = options;
  if (!model?.configured) return heuristic('no model configured');

  let content: string;
  let usage: Usage;
  try {
    const completion = await model.complete({
      messages: architectMessages(request),
      json: true,
      temperature: 0.2,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
    content = completion.content ?? '';
    usage = completion.usage;
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof NoModelConfiguredError) return heuristic('no model configured');
    return heuristic(`the model call failed: ${(error as Error).message}`);
  }

  const extracted = extractJson(content);
  if (!extracted.ok) return heuristic(`the model's plan was unreadable: ${extracted.error}`, usage);
  try {
    const shape = readPlanShape(extracted.value);
    const subtasks = normalizeSubtasks(shape.subtasks);
    return {
      goal: request.goal,
      subtasks,
      source: 'llm',
      reasoning: shape.reasoning ?? '',
      usage,
    };
  } catch (error) {
    if (error instanceof DomainError) return heuristic(`the model's plan was refused: ${error.message}`, usage);
    throw error;
  }
}

/**
 * Subtask inputs from a model's plan in any of the shapes the seed knew:
 * - `{reasoning, subtasks:[{description, agent, dependencies:[0-based indices], estimated_time:"5 min"}]}`
 *   (its architect's JSON answer);
 * - `{title, description, subtasks:[{title, description, agent, estimated_time_minutes, dependencies}]}`
 *   (its create_plan tool);
 * - `{subtasks:[{id:"subtask_1", …, dependencies:["subtask_1"]}]}` (its architect prompt's example);
 * and the obvious variants: a bare array, `{plan:{…}}`, `tasks` or `steps` for `subtasks`.
 * Estimates become seconds (parseDuration); anything unreadable is a 400 that names the field.
 */
export function readPlanShape(value: unknown): { subtasks: SubtaskInput[]; reasoning?: string } {
  const root = unwrapPlan(value);
  const list = Array.isArray(root) ? root : root.subtasks ?? root.tasks ?? root.steps;
  if (!Array.isArray(list)) throw invalidPlan('the plan has no subtasks array');
  const reasoning = !Array.isArray(root) ? firstString(root.reasoning, root.analysis, root.summary, root.description) : undefined;

  const items = list.map((item, index) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw invalidPlan(`subtask ${index} is not an object`, { index });
    }
    return item as Record<string, unknown>;
  });
  // Numeric ids ("id": 1) name subtasks; dependencies that equal one of them mean that subtask,
  // not an index (which is what a bare number means in CreatePlan).
  const numericIds = new Map<number, string>();
  for (const item of items) if (typeof item.id === 'number') numericIds.set(item.id, String(item.id));

  const subtasks = items.map((item, index): SubtaskInput => {
    const id = typeof item.id === 'string' && item.id.trim() ? item.id.trim() : typeof item.id === 'number' ? String(item.id) : undefined;
    const description = firstString(item.description, item.task, item.title, item.name, item.step);
    if (!description) throw invalidPlan(`subtask ${id ?? index} has no description`, { index });
    const title = typeof item.title === 'string' ? item.title.trim() : '';
    const fullDescription = title && description !== title && !description.startsWith(title) ? `${title}: ${description}` : description;

    const rawDeps = item.dependencies ?? item.depends_on ?? item.dependsOn ?? [];
    if (!Array.isArray(rawDeps)) throw invalidPlan(`subtask ${id ?? index} has dependencies that are not a list`, { index });
    const dependencies = rawDeps.map((dep): string | number => {
      if (typeof dep === 'number') return numericIds.get(dep) ?? dep;
      if (typeof dep === 'string') return dep;
      throw invalidPlan(`subtask ${id ?? index} has a dependency that is neither an id nor an index: ${JSON.stringify(dep)}`, { index });
    });

    return {
      ...(id !== undefined ? { id } : {}),
      description: fullDescription,
      ...(typeof item.agent === 'string' ? { agent: agentOf(item.agent) } : {}),
      dependencies,
      estimated_time: estimateOf(item, index),
    };
  });
  return { subtasks, ...(reasoning ? { reasoning } : {}) };
}

function unwrapPlan(value: unknown): Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return value;
  if (value === null || typeof value !== 'object') throw invalidPlan(`the plan is not a JSON object: ${JSON.stringify(value)}`);
  const object = value as Record<string, unknown>;
  // {"plan": {...}} or {"name": "create_plan", "arguments": {...}}
  for (const key of ['plan', 'arguments', 'parameters']) {
    const inner = object[key];
    if (!object.subtasks && inner && typeof inner === 'object') return inner as Record<string, unknown>;
  }
  return object;
}

/** Seed agent names (and the classifier's) to Planline's; others pass through for normalizeSubtasks to judge. */
function agentOf(name: string): AgentType {
  const lower = name.trim().toLowerCase();
  const aliases: Record<string, AgentType> = { code: 'coder', explain: 'ask' };
  return (aliases[lower] ?? lower) as AgentType;
}

function estimateOf(item: Record<string, unknown>, index: number): number | undefined {
  const field = (name: string) => `subtasks.${index}.${name}`;
  if (item.estimated_time !== undefined && item.estimated_time !== null) return duration(item.estimated_time, field('estimated_time'));
  if (typeof item.estimated_seconds === 'number') return parseDuration(item.estimated_seconds, field('estimated_seconds'));
  for (const name of ['estimated_time_minutes', 'estimated_minutes']) {
    const value = item[name];
    if (typeof value === 'number') return parseDuration(value * 60, field(name));
    if (typeof value === 'string') return duration(/^\s*\d+(\.\d+)?\s*$/.test(value) ? `${value} min` : value, field(name));
  }
  if (typeof item.estimate === 'string' || typeof item.estimate === 'number') return duration(item.estimate, field('estimate'));
  return undefined;
}

function duration(value: unknown, field: string): number {
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw invalidPlan(`${field} must be seconds or a duration such as "10 min", got ${JSON.stringify(value)}`);
  }
  return parseDuration(value, field);
}

function firstString(...values: unknown[]): string | undefined {
  for (const value of values) if (typeof value === 'string' && value.trim()) return value.trim();
  return undefined;
}

export const ARCHITECT_SYSTEM_PROMPT = `You are the architect of a coding assistant that runs inside the user's IDE. You do not execute
anything: you break a task into concrete subtasks that specialised agents will execute after the user
approves the plan. Subtasks whose dependencies are done run in parallel.

Agents:
- "coder": writes and changes code, files and configuration, runs commands;
- "debug": investigates errors and failing tests, runs diagnostics (reads and runs, does not edit);
- "ask": answers questions and explains (no changes).

Rules:
1. Each subtask is one concrete, verifiable action that one agent can finish on its own.
2. Give each subtask a short id ("st-1", "st-2", …) and list in "dependencies" the ids of the subtasks that
   must finish before it starts. Add a dependency only where the order really matters; no cycles.
3. Estimate each subtask realistically as a string such as "5 min", "20 min" or "1 h 30 min".
4. Keep plans small: usually 2 to 8 subtasks.

Respond with one JSON object only, in exactly this shape:
{
  "reasoning": "one or two sentences on how you split the task",
  "subtasks": [
    {"id": "st-1", "description": "what to do, precisely", "agent": "coder", "dependencies": [], "estimated_time": "10 min"}
  ]
}`;

export function architectMessages(request: PlanRequest): ChatMessage[] {
  const parts: string[] = [];
  const recent = (request.conversation ?? []).slice(-6);
  if (recent.length) parts.push(`Recent conversation (context):\n${recent.map((m) => `${m.role}: ${clip(m.content, 800)}`).join('\n')}`);
  parts.push(`Task:\n${request.goal}`);
  if (request.feedback?.trim()) {
    parts.push(`The user reviewed the previous plan and asked for changes:\n${request.feedback.trim()}\nPlan again, following this feedback.`);
  }
  if (request.replan) {
    const { previous, failure } = request.replan;
    const finished = previous.filter((s) => s.status === 'succeeded');
    const failed = previous.find((s) => s.id === failure.subtask_id);
    const open = previous.filter((s) => s.status !== 'succeeded' && s.id !== failure.subtask_id);
    parts.push(
      [
        'This is a re-plan: the previous plan failed part-way.',
        finished.length
          ? `Finished subtasks (already done; do not repeat them, and do not list them as dependencies):\n${finished
              .map((s) => `- ${s.id} [${s.agent}] ${s.description}\n  result: ${clip(s.result ?? '(no result text)', 1500)}`)
              .join('\n')}`
          : 'No subtask finished.',
        `Failed subtask: ${failed ? `${failed.id} [${failed.agent}] ${failed.description}` : failure.subtask_id}\n  error: ${clip(failure.error, 2000)}`,
        open.length ? `Subtasks that had not run yet:\n${open.map((s) => `- ${s.id} [${s.agent}] ${s.description}`).join('\n')}` : '',
        'Plan only the remaining work, taking the failure into account (a different approach, or an investigation first).',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  }
  return [
    { role: 'system', content: ARCHITECT_SYSTEM_PROMPT },
    { role: 'user', content: parts.join('\n\n') },
  ];
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
