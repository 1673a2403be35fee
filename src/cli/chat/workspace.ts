// The one directory tool calls may touch. Every path a tool is given goes through `inside`: relative
// paths are taken from the workspace root, and whatever resolves elsewhere — `..`, an absolute path
// outside, a symlink (anywhere along the path) pointing out — is refused before anything runs.
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** A refusal or failure a tool answers with as its `error`. */
export class ToolError extends Error {
  override readonly name = 'ToolError';
}

export interface Workspace {
  /** The workspace's real path (symlinks resolved). */
  root: string;
  /** The absolute path `path` names inside the workspace, or a ToolError when it would leave it. */
  inside(path: unknown, what?: string): string;
  /** The path as the workspace shows it to the model: relative, with '/' separators ('.' for the root). */
  show(absolute: string): string;
}

export function openWorkspace(dir: string): Workspace {
  const root = realpathSync(dir);
  const contains = (path: string) => {
    const rel = relative(root, path);
    return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  };
  return {
    root,
    inside(path, what = 'path') {
      if (typeof path !== 'string' || path === '') throw new ToolError(`"${what}" must be a non-empty string`);
      if (path.includes('\0')) throw new ToolError(`"${what}" contains a NUL character`);
      const wanted = resolve(root, path);
      if (!contains(wanted)) throw new ToolError(`${JSON.stringify(path)} is outside the workspace`);
      const real = realPrefix(wanted);
      if (!contains(real)) throw new ToolError(`${JSON.stringify(path)} leads outside the workspace (through a symbolic link)`);
      return real;
    },
    show(absolute) {
      const rel = relative(root, absolute);
      return rel === '' ? '.' : rel.split(sep).join('/');
    },
  };
}

/**
 * The real path of `path`: symlinks resolved in the longest prefix that exists, the rest (a file or
 * directories about to be created) appended as written.
 */
function realPrefix(path: string): string {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    try {
      return join(realpathSync(current), ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A dangling symlink also reports ENOENT: its target is unknown, so it is treated as leaving.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new ToolError(`cannot resolve ${JSON.stringify(path)}: ${(error as Error).message}`);
      if (isDanglingLink(current)) throw new ToolError(`${JSON.stringify(path)} goes through a broken symbolic link`);
      const parent = dirname(current);
      if (parent === current) return path;
      missing.push(current.slice(parent.length).replace(/^[\\/]+/, ''));
      current = parent;
    }
  }
}

function isDanglingLink(path: string): boolean {
  try {
    // lstat succeeds on the link itself; realpath failed, so its target is missing.
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
