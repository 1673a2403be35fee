// A plan's subtasks form a DAG. Clients may name dependencies by position (0-based index) or by id;
// this turns them into ids and refuses what cannot be executed: empty plans, duplicate ids, unknown or
// self dependencies and cycles (the error names the cycle, so the author can fix it).
import { AGENT_TYPES, type AgentType, type Subtask } from '../events/catalog.js';
import { invalidPlan } from './errors.js';
import { parseDuration } from './duration.js';

export const MAX_SUBTASKS = 200;

export interface SubtaskInput {
  id?: string | undefined;
  description: string;
  agent?: AgentType | undefined;
  dependencies?: ReadonlyArray<string | number> | undefined;
  /** Seconds, or a written duration ("5 min", "1h 30m"): plans come from people and models alike. */
  estimated_time?: number | string | undefined;
}

export function normalizeSubtasks(inputs: readonly SubtaskInput[], defaultAgent: AgentType = 'coder'): Subtask[] {
  if (inputs.length === 0) throw invalidPlan('a plan needs at least one subtask');
  if (inputs.length > MAX_SUBTASKS) throw invalidPlan(`a plan has at most ${MAX_SUBTASKS} subtasks, got ${inputs.length}`);

  const ids = inputs.map((input, index) => input.id ?? `st-${index + 1}`);
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw invalidPlan(`subtask id ${id} is used twice`, { subtask_id: id });
    seen.add(id);
  }

  const subtasks = inputs.map((input, index): Subtask => {
    const id = ids[index]!;
    // Plans also come from models, not only from validated HTTP bodies: check the agent here too.
    const agent = input.agent ?? defaultAgent;
    if (!AGENT_TYPES.includes(agent)) {
      throw invalidPlan(`subtask ${id} names unknown agent type ${JSON.stringify(agent)}; known: ${AGENT_TYPES.join(', ')}`, {
        subtask_id: id,
        agent,
      });
    }
    if (!input.description?.trim()) throw invalidPlan(`subtask ${id} needs a description`, { subtask_id: id });
    const dependencies = (input.dependencies ?? []).map((ref) => {
      const depId = typeof ref === 'number' ? ids[ref] : ref;
      if (depId === undefined || !seen.has(depId)) {
        throw invalidPlan(`subtask ${id} depends on unknown subtask ${JSON.stringify(ref)}`, {
          subtask_id: id,
          dependency: ref,
        });
      }
      if (depId === id) throw invalidPlan(`subtask ${id} depends on itself`, { subtask_id: id });
      return depId;
    });
    return {
      id,
      description: input.description,
      agent,
      dependencies: [...new Set(dependencies)],
      estimated_time: input.estimated_time === undefined ? 0 : parseDuration(input.estimated_time, `subtasks.${index}.estimated_time`),
    };
  });

  const cycle = findCycle(subtasks);
  if (cycle) throw invalidPlan(`dependencies form a cycle: ${cycle.join(' -> ')}`, { cycle });
  return subtasks;
}

/** A dependency cycle as a path that starts and ends on the same id, or undefined for a DAG. */
export function findCycle(subtasks: readonly Pick<Subtask, 'id' | 'dependencies'>[]): string[] | undefined {
  const dependencies = new Map(subtasks.map((s) => [s.id, s.dependencies]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];

  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const dep of dependencies.get(id) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };

  for (const { id } of subtasks) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return undefined;
}
