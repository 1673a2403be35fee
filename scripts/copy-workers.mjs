// Worker threads run plain JavaScript files that tsc does not emit: copy every src/**/*.mjs next to
// its compiled neighbours. `node scripts/copy-workers.mjs [outDir]` (default dist).
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'dist');

function* workers(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* workers(path);
    else if (entry.name.endsWith('.mjs')) yield path;
  }
}

for (const file of workers(join(root, 'src'))) {
  const target = join(out, relative(root, file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
}
