// The tool runner: what the IDE does with a tool call, done against --workspace. The names and
// arguments are src/agents/tools.ts's (aliases included); every path goes through the workspace, so a
// call that would reach outside it is answered with an error and runs nothing.
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { canonicalToolName } from '../../agents/tools.js';
import { runCommand } from './exec.js';
import { globMatcher } from './glob.js';
import { searchInCode, type SearchArguments } from './search.js';
import { walk } from './walk.js';
import { ToolError, type Workspace } from './workspace.js';

/** A tool's answer: `result` for the model, or `error` (never both). */
export type ToolOutcome = { result: unknown } | { error: string };

export interface ToolRunnerOptions {
  /** execute_command's default timeout (seconds); the call's `timeout` overrides it, at most maxTimeoutS. */
  defaultTimeoutS?: number;
  maxTimeoutS?: number;
  env?: NodeJS.ProcessEnv;
}

const MAX_READ_BYTES = 2 * 1024 * 1024;
const MAX_LISTED = 5_000;

export type ToolRunner = (tool: string, args: unknown) => Promise<ToolOutcome>;

export function toolRunner(workspace: Workspace, options: ToolRunnerOptions = {}): ToolRunner {
  const defaultTimeoutS = options.defaultTimeoutS ?? 60;
  const maxTimeoutS = options.maxTimeoutS ?? 300;

  const tools: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
    async read_file(args) {
      const path = workspace.inside(args.path);
      const info = await stat(path);
      if (info.isDirectory()) throw new ToolError(`${JSON.stringify(args.path)} is a directory`);
      if (info.size > MAX_READ_BYTES) throw new ToolError(`${JSON.stringify(args.path)} is ${info.size} bytes; at most ${MAX_READ_BYTES} are read`);
      const text = await readFile(path, 'utf8');
      const start = optionalInteger(args.start_line, 'start_line');
      const end = optionalInteger(args.end_line, 'end_line');
      if (start === undefined && end === undefined) return text;
      const lines = text.split('\n');
      return lines.slice(Math.max(1, start ?? 1) - 1, end ?? lines.length).join('\n');
    },

    async write_file(args) {
      const path = workspace.inside(args.path);
      if (typeof args.content !== 'string') throw new ToolError('"content" must be a string');
      if (args.create_dirs === true) await mkdir(dirname(path), { recursive: true });
      await writeFile(path, args.content, 'utf8');
      return `Wrote ${Buffer.byteLength(args.content)} bytes to ${workspace.show(path)}`;
    },

    async list_files(args) {
      const dir = workspace.inside(args.path ?? '.');
      const info = await stat(dir);
      if (!info.isDirectory()) throw new ToolError(`${JSON.stringify(args.path)} is not a directory`);
      const { entries, truncated } = await walk(dir, { recursive: args.recursive === true, includeHidden: args.include_hidden === true, limit: MAX_LISTED });
      const matches = typeof args.pattern === 'string' && args.pattern !== '' ? globMatcher(args.pattern) : () => true;
      const lines = entries.filter((e) => e.kind === 'directory' || matches(e.path)).map((e) => (e.kind === 'directory' ? `${e.path}/` : e.path));
      if (truncated) lines.push(`… (listing stopped after ${MAX_LISTED} entries)`);
      return lines.join('\n');
    },

    async create_directory(args) {
      const path = workspace.inside(args.path);
      await mkdir(path, { recursive: args.recursive !== false });
      return `Created directory ${workspace.show(path)}`;
    },

    async execute_command(args) {
      if (typeof args.command !== 'string' || args.command.trim() === '') throw new ToolError('"command" must be a non-empty string');
      const cwd = workspace.inside(args.cwd ?? '.', 'cwd');
      const requested = optionalInteger(args.timeout, 'timeout');
      const timeoutS = Math.min(Math.max(1, requested ?? defaultTimeoutS), maxTimeoutS);
      const outcome = await runCommand(args.command, cwd, timeoutS * 1000, options.env);
      if (outcome.timed_out) {
        throw new ToolError(`the command timed out after ${timeoutS}s and was killed\nstdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`);
      }
      return outcome;
    },

    async search_in_code(args) {
      const { matches, truncated } = await searchInCode(workspace, args as unknown as SearchArguments);
      return { matches, count: matches.length, truncated };
    },

    async delete_file(args) {
      const path = workspace.inside(args.path);
      if (path === workspace.root) throw new ToolError('the workspace itself cannot be deleted');
      const info = await stat(path);
      if (info.isDirectory()) throw new ToolError(`${JSON.stringify(args.path)} is a directory; delete_file deletes files`);
      await rm(path);
      return `Deleted ${workspace.show(path)}`;
    },

    async move_file(args) {
      const source = workspace.inside(args.source, 'source');
      const destination = workspace.inside(args.destination, 'destination');
      if (source === workspace.root) throw new ToolError('the workspace itself cannot be moved');
      await mkdir(dirname(destination), { recursive: true });
      await rename(source, destination);
      return `Moved ${workspace.show(source)} to ${workspace.show(destination)}`;
    },
  };

  return async (tool, args) => {
    const name = canonicalToolName(tool);
    const run = name ? tools[name] : undefined;
    if (!run) return { error: `Unsupported tool ${JSON.stringify(tool)}` };
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return { error: 'the arguments must be a JSON object' };
    try {
      return { result: await run(args as Record<string, unknown>) };
    } catch (error) {
      return { error: describe(error) };
    }
  };
}

function optionalInteger(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ToolError(`"${field}" must be an integer`);
  return value;
}

function describe(error: unknown): string {
  if (error instanceof ToolError) return error.message;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EEXIST') return 'it already exists';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}
