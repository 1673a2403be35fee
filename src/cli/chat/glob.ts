// Glob patterns of list_files' `pattern` and search_in_code's `file_pattern` ('*.ts', '**/*.yaml',
// 'src/?.js', '*.{ts,tsx}'). A pattern without a '/' matches the file's name anywhere in the tree, as
// the IDE's does; one with a '/' matches the path from the searched directory.

export function globMatcher(pattern: string): (path: string) => boolean {
  const regex = new RegExp(`^${translate(pattern)}$`);
  if (pattern.includes('/')) return (path) => regex.test(path);
  return (path) => regex.test(path.slice(path.lastIndexOf('/') + 1));
}

function translate(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '*') {
      if (pattern[i + 1] === '*') {
        // '**/' matches any number of directories (none included); a bare '**' anything.
        if (pattern[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else out += '[^/]*';
    } else if (char === '?') out += '[^/]';
    else if (char === '{') {
      const end = pattern.indexOf('}', i);
      if (end === -1) out += '\\{';
      else {
        out += `(?:${pattern.slice(i + 1, end).split(',').map(translate).join('|')})`;
        i = end;
      }
    } else out += char.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return out;
}
