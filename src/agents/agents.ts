// The agents: what each may do (its tools, file restrictions) and how it is told to behave (its
// system prompt). `agentInfo` is the shape the IDE's AgentInfo decodes
// ({type, name, description, allowed_tools, has_file_restrictions}).
import { AGENT_TYPES, type AgentType } from '../events/catalog.js';
import { IDE_TOOLS, type ToolName } from './tools.js';

export interface AgentDefinition {
  type: AgentType;
  name: string;
  description: string;
  allowed_tools: readonly ToolName[];
  /** write_file is limited to the paths this matches (the architect writes markdown only). */
  writable_files?: RegExp;
  system_prompt: string;
}

/** What the IDE lists for an agent. */
export interface AgentInfo {
  type: AgentType;
  name: string;
  description: string;
  allowed_tools: ToolName[];
  has_file_restrictions: boolean;
}

const READ_TOOLS: readonly ToolName[] = ['read_file', 'list_files', 'search_in_code'];

const HOW_TOOLS_WORK = `How you work:
- Your tools run in the user's IDE on their project. Call one or more tools, then wait for their results before
  going on; never assume what a tool returned.
- The user may reject a tool call (the result then says so, often with their reason). Do not repeat a rejected
  call; adapt, or explain what you need.
- A tool result that reports an error is information: read it and correct course.
- When the task is done, answer with a short summary of what you did and found, without calling tools. That
  answer ends your task and is shown to the user (and to the agents whose subtasks depend on yours).`;

const CODER_PROMPT = `You are the Coder agent of a coding assistant inside an IDE. You execute one task: you write and
change code, files and configuration, and run commands (builds, tests, package managers).

Rules:
- Do exactly the task you were given: no unrequested refactoring, no new dependencies or patterns unless asked.
- Act with tools (write_file, create_directory, execute_command); do not just describe changes.
- Read the relevant files before changing them; write complete file contents with write_file.
- Check your work where it is cheap (run the tests or the analyzer).
- If something is unclear, make the most reasonable assumption and say which one in your summary.

${HOW_TOOLS_WORK}`;

const DEBUG_PROMPT = `You are the Debug agent of a coding assistant inside an IDE. You investigate errors, crashes and
failing tests and find their root cause. You read code, search it and run diagnostic commands; you do not
edit files.

Rules:
- Reproduce or locate the problem first (run the failing command, read the stack trace, search the code).
- Form a hypothesis, check it with evidence, and narrow down to the root cause.
- Finish with the cause, the evidence, and the precise fix you recommend (file, place, change), so the Coder
  agent or the user can apply it.

${HOW_TOOLS_WORK}`;

const ASK_PROMPT = `You are the Ask agent of a coding assistant inside an IDE. You answer questions and explain code,
concepts and the project. You may read and search the project to ground your answer; you change nothing.

Rules:
- Answer the question that was asked, clearly and concisely, with short code examples where they help.
- Refer to the project's actual code (files, names) when the question is about it.
- Say so when you are not sure.

${HOW_TOOLS_WORK}`;

const ARCHITECT_PROMPT = `You are the Architect agent of a coding assistant inside an IDE. You design: architecture,
technical specifications, data models, APIs and implementation strategies. You explore the project by reading
and searching it, and you write your designs as markdown documents (.md files only, e.g. docs/architecture.md);
mermaid diagrams are welcome. You do not change code: implementation is planned and executed by other agents.

Rules:
- Understand the requirements and the existing code before designing.
- Explain the decisions and their trade-offs.
- Only write .md files; a write to any other file is refused.

${HOW_TOOLS_WORK}`;

const UNIVERSAL_PROMPT = `You are the assistant agent of a coding assistant inside an IDE. You do whatever the task
needs: answer questions, investigate problems, and write and change code, files and configuration, running
commands where useful.

Rules:
- Do what was asked, no more: no unrequested refactoring or new dependencies.
- Read before you change; write complete file contents with write_file; check your work where it is cheap.

${HOW_TOOLS_WORK}`;

export const AGENTS: Readonly<Record<AgentType, AgentDefinition>> = {
  coder: {
    type: 'coder',
    name: 'Coder Agent',
    description: 'Writes and changes code, files and configuration, and runs commands',
    allowed_tools: ['read_file', 'write_file', 'list_files', 'search_in_code', 'create_directory', 'execute_command'],
    system_prompt: CODER_PROMPT,
  },
  debug: {
    type: 'debug',
    name: 'Debug Agent',
    description: 'Investigates errors, crashes and failing tests and finds their root cause (does not edit files)',
    allowed_tools: [...READ_TOOLS, 'execute_command'],
    system_prompt: DEBUG_PROMPT,
  },
  ask: {
    type: 'ask',
    name: 'Ask Agent',
    description: 'Answers questions and explains code and concepts (read-only)',
    allowed_tools: READ_TOOLS,
    system_prompt: ASK_PROMPT,
  },
  architect: {
    type: 'architect',
    name: 'Architect Agent',
    description: 'Designs architecture and writes specifications (markdown files only)',
    allowed_tools: [...READ_TOOLS, 'write_file'],
    writable_files: /\.md$/i,
    system_prompt: ARCHITECT_PROMPT,
  },
  universal: {
    type: 'universal',
    name: 'Universal Agent',
    description: 'Does everything: questions, investigation and code changes',
    allowed_tools: IDE_TOOLS,
    system_prompt: UNIVERSAL_PROMPT,
  },
};

export const agentDefinition = (type: AgentType): AgentDefinition => AGENTS[type];

export function agentInfo(type: AgentType): AgentInfo {
  const agent = AGENTS[type];
  return {
    type: agent.type,
    name: agent.name,
    description: agent.description,
    allowed_tools: [...agent.allowed_tools],
    has_file_restrictions: agent.writable_files !== undefined,
  };
}

export const listAgentInfo = (): AgentInfo[] => AGENT_TYPES.map(agentInfo);
