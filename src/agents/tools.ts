// The IDE's tools as OpenAI function tools. Names and arguments are the ones the IDE client executes
// (codelab_ai_assistant's tool executor): read_file, write_file, list_files, create_directory,
// execute_command (run_command is its alias) and search_in_code. The seed's approval policy also
// names delete_file, move_file and search_files: the first two are defined here for clients that run
// them but are not offered to agents (the IDE answers "Unsupported tool"); search_files is read as
// search_in_code. Arguments are checked against the schema before a call reaches the IDE, whose
// executor casts them blindly (`args['content'] as String`).
import type { FunctionTool, JsonSchema } from './model.js';

export const TOOL_NAMES = [
  'read_file',
  'write_file',
  'list_files',
  'create_directory',
  'execute_command',
  'search_in_code',
  'delete_file',
  'move_file',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** The tools today's IDE client executes. */
export const IDE_TOOLS: readonly ToolName[] = ['read_file', 'write_file', 'list_files', 'create_directory', 'execute_command', 'search_in_code'];

/** Other names models and the seed use for the same tools. */
export const TOOL_ALIASES: Readonly<Record<string, ToolName>> = {
  run_command: 'execute_command',
  search_files: 'search_in_code',
  search_code: 'search_in_code',
};

/** The canonical name of a tool, or undefined for a tool nobody executes. */
export function canonicalToolName(name: string): ToolName | undefined {
  if ((TOOL_NAMES as readonly string[]).includes(name)) return name as ToolName;
  return TOOL_ALIASES[name];
}

const string = (description: string, extra: JsonSchema = {}) => ({ type: 'string', description, ...extra });
const boolean = (description: string, defaultValue: boolean) => ({ type: 'boolean', description, default: defaultValue });
const integer = (description: string, extra: JsonSchema = {}) => ({ type: 'integer', description, ...extra });

const tool = (name: ToolName, description: string, properties: Record<string, JsonSchema>, required: string[]): FunctionTool => ({
  type: 'function',
  function: { name, description, parameters: { type: 'object', properties, required, additionalProperties: false } },
});

export const TOOL_DEFINITIONS: Readonly<Record<ToolName, FunctionTool>> = {
  read_file: tool(
    'read_file',
    'Read a file of the project. Optionally only lines start_line..end_line (1-based, inclusive).',
    {
      path: string('Path relative to the project root'),
      encoding: string('File encoding', { default: 'utf-8' }),
      start_line: integer('First line to read (1-based, inclusive)', { minimum: 1 }),
      end_line: integer('Last line to read (1-based, inclusive)', { minimum: 1 }),
    },
    ['path'],
  ),
  write_file: tool(
    'write_file',
    'Write a whole file (create or overwrite). The user may be asked to approve it.',
    {
      path: string('Path relative to the project root'),
      content: string('The complete new content of the file'),
      encoding: string('File encoding', { default: 'utf-8' }),
      create_dirs: boolean("Create parent directories that don't exist", false),
      backup: boolean('Back up an existing file before overwriting it', true),
    },
    ['path', 'content'],
  ),
  list_files: tool(
    'list_files',
    'List files and directories under a path of the project.',
    {
      path: string("Directory relative to the project root; '.' for the root"),
      recursive: boolean('List subdirectories too', false),
      include_hidden: boolean('Include hidden files (starting with .)', false),
      pattern: string("Glob to filter by, e.g. '*.dart' or '**/*.yaml'"),
    },
    ['path'],
  ),
  create_directory: tool(
    'create_directory',
    'Create a directory in the project. The user may be asked to approve it.',
    {
      path: string('Directory to create, relative to the project root'),
      recursive: boolean('Create missing parent directories', true),
    },
    ['path'],
  ),
  execute_command: tool(
    'execute_command',
    "Run a command in the project (e.g. 'flutter pub get', 'npm test', 'git status'). The user may be asked to approve it.",
    {
      command: string('The command line to run'),
      cwd: string('Working directory relative to the project root'),
      timeout: integer('Timeout in seconds (default 60, at most 300)', { minimum: 1, maximum: 300, default: 60 }),
      shell: boolean('Run the command through a shell', false),
    },
    ['command'],
  ),
  search_in_code: tool(
    'search_in_code',
    'Search the project for text or a regular expression (grep-like).',
    {
      query: string('Text or pattern to search for'),
      path: string('Directory to search in (default: the project root)', { default: '.' }),
      file_pattern: string("Glob of files to search, e.g. '*.dart'"),
      case_sensitive: boolean('Match case', false),
      regex: boolean('Treat the query as a regular expression', false),
      max_results: integer('Most results to return (default 100, at most 1000)', { minimum: 1, maximum: 1000, default: 100 }),
    },
    ['query'],
  ),
  delete_file: tool('delete_file', 'Delete a file of the project. The user may be asked to approve it.', { path: string('Path relative to the project root') }, ['path']),
  move_file: tool(
    'move_file',
    'Move or rename a file of the project. The user may be asked to approve it.',
    { source: string('Current path relative to the project root'), destination: string('New path relative to the project root') },
    ['source', 'destination'],
  ),
};

export const toolsFor = (names: readonly ToolName[]): FunctionTool[] => names.map((name) => TOOL_DEFINITIONS[name]);

/**
 * Why these arguments cannot go to the IDE (a missing required field, a wrong type, a number out of
 * range), or undefined when they can. The message is written for the model.
 */
export function checkToolArguments(name: ToolName, args: Record<string, unknown>): string | undefined {
  const schema = TOOL_DEFINITIONS[name].function.parameters as {
    properties: Record<string, { type: string; minimum?: number; maximum?: number }>;
    required: string[];
  };
  const problems: string[] = [];
  for (const field of schema.required) {
    if (args[field] === undefined || args[field] === null) problems.push(`missing required argument "${field}"`);
  }
  for (const [field, value] of Object.entries(args)) {
    const spec = schema.properties[field];
    // Extra arguments are harmless (the IDE ignores them); a misspelt required one is caught above.
    if (!spec || value === undefined || value === null) continue;
    const ok =
      spec.type === 'string'
        ? typeof value === 'string'
        : spec.type === 'boolean'
          ? typeof value === 'boolean'
          : spec.type === 'integer'
            ? Number.isInteger(value)
            : true;
    if (!ok) {
      problems.push(`"${field}" must be ${spec.type === 'integer' ? 'an integer' : `a ${spec.type}`}, got ${JSON.stringify(value)}`);
      continue;
    }
    if (typeof value === 'number' && ((spec.minimum !== undefined && value < spec.minimum) || (spec.maximum !== undefined && value > spec.maximum))) {
      problems.push(`"${field}" must be between ${spec.minimum ?? '-∞'} and ${spec.maximum ?? '∞'}, got ${value}`);
    }
  }
  return problems.length ? problems.join('; ') : undefined;
}
