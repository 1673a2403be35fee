// search_in_code: grep over the workspace's text files. Plain text by default (case-insensitive unless
// asked), a regular expression when `regex` is true; binary and very large files are skipped.
import { open } from 'node:fs/promises';
import { globMatcher } from './glob.js';
import { walk } from './walk.js';
import { ToolError, type Workspace } from './workspace.js';

export interface SearchMatch {
  file: string;
  line: number;
  text: string;
}

const SKIPPED_DIRECTORIES = new Set(['node_modules', '.git', 'dist', 'build', '.dart_tool']);
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_LINE_CHARS = 300;
const MAX_FILES = 20_000;

export interface SearchArguments {
  query: string;
  path?: string;
  file_pattern?: string;
  case_sensitive?: boolean;
  regex?: boolean;
  max_results?: number;
}

export async function searchInCode(workspace: Workspace, args: SearchArguments): Promise<{ matches: SearchMatch[]; truncated: boolean }> {
  if (typeof args.query !== 'string' || args.query === '') throw new ToolError('"query" must be a non-empty string');
  const dir = workspace.inside(args.path ?? '.');
  const max = Math.min(Math.max(1, Math.trunc(Number(args.max_results ?? 100)) || 100), 1000);
  let pattern: RegExp;
  try {
    const source = args.regex ? args.query : args.query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    pattern = new RegExp(source, args.case_sensitive ? '' : 'i');
  } catch (error) {
    throw new ToolError(`"query" is not a valid regular expression: ${(error as Error).message}`);
  }
  const wanted = args.file_pattern ? globMatcher(args.file_pattern) : () => true;
  const { entries } = await walk(dir, { recursive: true, includeHidden: false, skip: SKIPPED_DIRECTORIES, limit: MAX_FILES });
  const matches: SearchMatch[] = [];
  for (const entry of entries) {
    if (entry.kind !== 'file' || !wanted(entry.path)) continue;
    const text = await readText(entry.absolute);
    if (text === undefined) continue;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      if (!pattern.test(lines[i]!)) continue;
      if (matches.length >= max) return { matches, truncated: true };
      matches.push({ file: workspace.show(entry.absolute), line: i + 1, text: lines[i]!.trim().slice(0, MAX_LINE_CHARS) });
    }
  }
  return { matches, truncated: false };
}

/** A file's text, or undefined for one too large or binary (a NUL byte in its first 8 KiB). */
async function readText(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    if (size > MAX_FILE_BYTES) return undefined;
    const buffer = await handle.readFile();
    if (buffer.subarray(0, 8192).includes(0)) return undefined;
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}
