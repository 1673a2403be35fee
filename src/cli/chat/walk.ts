// Walking a directory of the workspace for list_files and search_in_code: depth first, sorted, without
// following symbolic links (a link is listed, never entered), hidden entries only when asked, and
// dependency and VCS directories skipped when searching.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface Entry {
  /** Path relative to the walked directory, '/' separated. */
  path: string;
  absolute: string;
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

export interface WalkOptions {
  recursive: boolean;
  includeHidden: boolean;
  /** Directory names not entered (still listed). */
  skip?: ReadonlySet<string>;
  /** Stop after this many entries. */
  limit: number;
}

export async function walk(dir: string, options: WalkOptions): Promise<{ entries: Entry[]; truncated: boolean }> {
  const entries: Entry[] = [];
  let truncated = false;
  const visit = async (absolute: string, prefix: string): Promise<void> => {
    const children = (await readdir(absolute, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const child of children) {
      if (entries.length >= options.limit) {
        truncated = true;
        return;
      }
      if (!options.includeHidden && child.name.startsWith('.')) continue;
      const path = prefix === '' ? child.name : `${prefix}/${child.name}`;
      const kind = child.isSymbolicLink() ? 'symlink' : child.isDirectory() ? 'directory' : child.isFile() ? 'file' : 'other';
      const entry: Entry = { path, absolute: join(absolute, child.name), kind };
      entries.push(entry);
      if (kind === 'directory' && options.recursive && !options.skip?.has(child.name)) await visit(entry.absolute, path);
    }
  };
  await visit(dir, '');
  return { entries, truncated };
}
