// Module hooks that let a plain `node` child process run the TypeScript sources as they are (tests
// that kill a process need a real one, and compiling the whole project first takes far longer): `.js`
// specifiers that name a `.ts` file resolve to it, and `.ts` files are transpiled one by one (types
// stripped, nothing checked; `npx tsc` checks them). Oxc (through rolldown, which vitest brings) is
// used when present: TypeScript's own transpiler takes seconds for the whole source tree.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const oxc = await import('rolldown/experimental').then((m) => m.transformSync, () => undefined);
const ts = oxc ? undefined : (await import('typescript')).default;

function transpile(path, source) {
  if (oxc) {
    const out = oxc(path, source, { sourcemap: false });
    if (out.errors?.length) throw new Error(`${path}: ${out.errors.map((e) => e.message).join('; ')}`);
    return out.code;
  }
  return ts.transpileModule(source, {
    fileName: path,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, inlineSourceMap: true },
  }).outputText;
}

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('.js') && (specifier.startsWith('.') || specifier.startsWith('file:')) && context.parentURL?.startsWith('file:')) {
    const asTs = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (existsSync(fileURLToPath(asTs))) return { url: asTs.href, shortCircuit: true, format: 'module' };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  return { format: 'module', source: transpile(path, readFileSync(path, 'utf8')), shortCircuit: true };
}
