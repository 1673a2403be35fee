// `planline chat` runs the agents' tool calls itself, as the IDE does: against a real temp directory
// here, with every path held inside the workspace (.., absolute paths and symbolic links out refused).
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { toolRunner, type ToolOutcome } from '../../src/cli/chat/tools.js';
import { openWorkspace } from '../../src/cli/chat/workspace.js';
import { globMatcher } from '../../src/cli/chat/glob.js';

const base = mkdtempSync(join(tmpdir(), 'planline-chat-tools-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

let root: string;
let outside: string;
let run: ReturnType<typeof toolRunner>;

beforeEach(() => {
  const dir = mkdtempSync(join(base, 'case-'));
  root = join(dir, 'workspace');
  outside = join(dir, 'outside');
  mkdirSync(join(root, 'src', 'lib'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'README.md'), '# Demo\nline two\nline three\n');
  writeFileSync(join(root, 'src', 'main.ts'), 'export const answer = 42;\n// TODO: login\n');
  writeFileSync(join(root, 'src', 'lib', 'util.ts'), 'export function todo() {}\n');
  writeFileSync(join(root, '.env'), 'SECRET=1\n');
  writeFileSync(join(outside, 'secret.txt'), 'top secret\n');
  run = toolRunner(openWorkspace(root), { defaultTimeoutS: 5 });
});

const result = (outcome: ToolOutcome) => {
  if ('error' in outcome) throw new Error(`expected a result, got the error ${outcome.error}`);
  return outcome.result as any;
};
const error = (outcome: ToolOutcome) => {
  if (!('error' in outcome)) throw new Error(`expected an error, got ${JSON.stringify(outcome.result)}`);
  return outcome.error;
};

describe('file tools', () => {
  it('read_file reads a whole file or a range of lines (1-based, inclusive)', async () => {
    expect(result(await run('read_file', { path: 'README.md' }))).toBe('# Demo\nline two\nline three\n');
    expect(result(await run('read_file', { path: 'README.md', start_line: 2, end_line: 3 }))).toBe('line two\nline three');
    expect(result(await run('read_file', { path: './src/../README.md', start_line: 3 }))).toBe('line three\n');
    expect(error(await run('read_file', { path: 'missing.txt' }))).toMatch(/no such file/);
    expect(error(await run('read_file', { path: 'src' }))).toMatch(/is a directory/);
    expect(error(await run('read_file', {}))).toMatch(/"path"/);
  });

  it('write_file creates and overwrites, making parent directories only when asked', async () => {
    expect(result(await run('write_file', { path: 'notes.txt', content: 'hello' }))).toMatch(/Wrote 5 bytes to notes.txt/);
    expect(readFileSync(join(root, 'notes.txt'), 'utf8')).toBe('hello');
    await run('write_file', { path: 'notes.txt', content: 'again' });
    expect(readFileSync(join(root, 'notes.txt'), 'utf8')).toBe('again');
    expect(error(await run('write_file', { path: 'deep/er/file.txt', content: 'x' }))).toMatch(/no such file/);
    expect(result(await run('write_file', { path: 'deep/er/file.txt', content: 'x', create_dirs: true }))).toMatch(/deep\/er\/file.txt/);
    expect(error(await run('write_file', { path: 'x.txt', content: 42 }))).toMatch(/"content" must be a string/);
  });

  it('list_files lists one level or the whole tree, hidden files only when asked, filtered by a glob', async () => {
    expect(result(await run('list_files', { path: '.' })).split('\n')).toEqual(['README.md', 'src/']);
    expect(result(await run('list_files', { path: '.', recursive: true })).split('\n')).toEqual(['README.md', 'src/', 'src/lib/', 'src/lib/util.ts', 'src/main.ts']);
    expect(result(await run('list_files', { path: '.', include_hidden: true })).split('\n')).toEqual(['.env', 'README.md', 'src/']);
    expect(result(await run('list_files', { path: 'src', recursive: true, pattern: '*.ts' })).split('\n')).toEqual(['lib/', 'lib/util.ts', 'main.ts']);
    expect(error(await run('list_files', { path: 'README.md' }))).toMatch(/not a directory/);
  });

  it('create_directory, delete_file and move_file', async () => {
    expect(result(await run('create_directory', { path: 'a/b/c' }))).toMatch(/a\/b\/c/);
    expect(existsSync(join(root, 'a', 'b', 'c'))).toBe(true);
    expect(result(await run('move_file', { source: 'README.md', destination: 'docs/README.md' }))).toMatch(/Moved README.md to docs\/README.md/);
    expect(existsSync(join(root, 'docs', 'README.md'))).toBe(true);
    expect(result(await run('delete_file', { path: 'docs/README.md' }))).toMatch(/Deleted/);
    expect(existsSync(join(root, 'docs', 'README.md'))).toBe(false);
    expect(error(await run('delete_file', { path: 'src' }))).toMatch(/is a directory/);
    expect(error(await run('delete_file', { path: '.' }))).toMatch(/workspace itself/);
  });

  it('unknown tools and non-object arguments are answered with an error', async () => {
    expect(error(await run('format_disk', {}))).toMatch(/Unsupported tool "format_disk"/);
    expect(error(await run('read_file', 'README.md'))).toMatch(/JSON object/);
    // Aliases the agents use are the same tools.
    expect(result(await run('run_command', { command: 'echo alias' })).stdout).toBe('alias\n');
  });
});

describe('search_in_code', () => {
  it('finds text case-insensitively by default, by regex when asked, filtered by file pattern', async () => {
    const todo = result(await run('search_in_code', { query: 'todo' }));
    expect(todo.matches).toEqual([
      { file: 'src/lib/util.ts', line: 1, text: 'export function todo() {}' },
      { file: 'src/main.ts', line: 2, text: '// TODO: login' },
    ]);
    expect(result(await run('search_in_code', { query: 'TODO', case_sensitive: true })).matches).toHaveLength(1);
    expect(result(await run('search_in_code', { query: 'answer = \\d+', regex: true })).matches).toEqual([{ file: 'src/main.ts', line: 1, text: 'export const answer = 42;' }]);
    expect(result(await run('search_in_code', { query: 'line', file_pattern: '*.md' })).matches.map((m: any) => m.line)).toEqual([2, 3]);
    expect(result(await run('search_in_code', { query: 'todo', path: 'src/lib' })).matches.map((m: any) => m.file)).toEqual(['src/lib/util.ts']);
    const capped = result(await run('search_in_code', { query: 'e', max_results: 2 }));
    expect(capped).toMatchObject({ count: 2, truncated: true });
    expect(error(await run('search_in_code', { query: '(', regex: true }))).toMatch(/not a valid regular expression/);
  });

  it('globs: names anywhere without a slash, paths with one, ** for any depth, braces for choices', () => {
    expect(globMatcher('*.ts')('src/lib/util.ts')).toBe(true);
    expect(globMatcher('*.ts')('src/lib/util.tsx')).toBe(false);
    expect(globMatcher('src/*.ts')('src/main.ts')).toBe(true);
    expect(globMatcher('src/*.ts')('src/lib/util.ts')).toBe(false);
    expect(globMatcher('**/*.ts')('main.ts')).toBe(true);
    expect(globMatcher('src/**/*.ts')('src/lib/util.ts')).toBe(true);
    expect(globMatcher('*.{ts,md}')('README.md')).toBe(true);
    expect(globMatcher('?.js')('a.js')).toBe(true);
  });
});

describe('execute_command', () => {
  it('runs a shell in the workspace and reports stdout, stderr and the exit code', async () => {
    const ok = result(await run('execute_command', { command: 'pwd; echo out; echo err >&2' }));
    expect(ok).toMatchObject({ exit_code: 0, stdout: `${realpathSync(root)}\nout\n`, stderr: 'err\n', timed_out: false });
    const failed = result(await run('execute_command', { command: 'exit 3' }));
    expect(failed.exit_code).toBe(3);
    const inSub = result(await run('execute_command', { command: 'ls', cwd: 'src' }));
    expect(inSub.stdout.split('\n')).toContain('main.ts');
  });

  it('kills a command that outlives its timeout, and its children', async () => {
    const started = Date.now();
    const outcome = await run('execute_command', { command: 'echo started; sleep 30 & sleep 30', timeout: 1 });
    expect(error(outcome)).toMatch(/timed out after 1s[\s\S]*started/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses a cwd outside the workspace', async () => {
    expect(error(await run('execute_command', { command: 'ls', cwd: '..' }))).toMatch(/outside the workspace/);
    expect(error(await run('execute_command', { command: 'ls', cwd: outside }))).toMatch(/outside the workspace/);
  });
});

describe('the workspace boundary', () => {
  it('refuses .., absolute paths elsewhere and symbolic links out, and runs nothing', async () => {
    expect(error(await run('read_file', { path: '../outside/secret.txt' }))).toMatch(/outside the workspace/);
    expect(error(await run('read_file', { path: join(outside, 'secret.txt') }))).toMatch(/outside the workspace/);
    expect(error(await run('write_file', { path: '../outside/new.txt', content: 'x' }))).toMatch(/outside the workspace/);
    expect(existsSync(join(outside, 'new.txt'))).toBe(false);

    symlinkSync(outside, join(root, 'escape'));
    symlinkSync(join(outside, 'secret.txt'), join(root, 'secret-link'));
    expect(error(await run('read_file', { path: 'escape/secret.txt' }))).toMatch(/symbolic link/);
    expect(error(await run('read_file', { path: 'secret-link' }))).toMatch(/symbolic link/);
    expect(error(await run('write_file', { path: 'escape/planted.txt', content: 'x' }))).toMatch(/symbolic link/);
    expect(error(await run('write_file', { path: 'escape/deeper/planted.txt', content: 'x', create_dirs: true }))).toMatch(/symbolic link/);
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    expect(existsSync(join(outside, 'deeper'))).toBe(false);
    expect(error(await run('list_files', { path: 'escape' }))).toMatch(/symbolic link/);
    expect(error(await run('search_in_code', { query: 'secret', path: 'escape' }))).toMatch(/symbolic link/);
    expect(error(await run('delete_file', { path: 'escape/secret.txt' }))).toMatch(/symbolic link/);
    expect(error(await run('move_file', { source: 'README.md', destination: '../outside/README.md' }))).toMatch(/outside the workspace/);
    expect(error(await run('create_directory', { path: '/tmp/planline-chat-should-not-exist' }))).toMatch(/outside the workspace/);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('top secret\n');

    // A link is listed but never walked into, so a search cannot read through it either.
    expect(result(await run('search_in_code', { query: 'top secret' })).matches).toEqual([]);
    // An absolute path inside the workspace is fine.
    expect(result(await run('read_file', { path: join(root, 'README.md'), end_line: 1 }))).toBe('# Demo');
  });

  it('a dangling symbolic link is refused (its target is unknown)', async () => {
    symlinkSync(join(outside, 'not-yet'), join(root, 'dangling'));
    expect(error(await run('write_file', { path: 'dangling', content: 'x' }))).toMatch(/broken symbolic link/);
    expect(existsSync(join(outside, 'not-yet'))).toBe(false);
  });
});
