// `planline import` of a generated log: N events (default 1,000,000; BENCH_EVENTS to change) of
// realistic plan lifecycles are written to a SQLite log, exported with `planline export`, and imported
// into a fresh durable log with `planline import` (both passes, end to end, as a user runs it), then
// imported again (idempotent: writes nothing). Baseline, same run: raw durable appends of 1,000 events
// each into a fresh log, the store doing the least an import could make it do.
// Run: npm run build && BENCH_EVENTS=1000000 node dist/bench/import.js
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli } from '../src/cli/run.js';
import { openSqliteEventStore } from '../src/events/sqlite-store.js';
import { measureRawAppends } from './store-append.js';
import { envNumber, fmt } from './support.js';
import { generate } from './views-rebuild.js';

export interface ImportBenchResult {
  events: number;
  fileBytes: number;
  exportPerSecond: number;
  /** The whole `planline import` into an empty log: validation pass and writing pass. */
  importPerSecond: number;
  importSeconds: number;
  /** The same file again: every event recognised, nothing written. */
  reimportPerSecond: number;
  /** Raw durable appends of 1,000 events per append, same run. */
  rawAppendPerSecond: number;
}

export async function benchImport(options: { events?: number } = {}): Promise<ImportBenchResult> {
  const target = options.events ?? envNumber('BENCH_EVENTS', 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'planline-import-'));
  try {
    const sourcePath = join(dir, 'source.db');
    const source = openSqliteEventStore(sourcePath, { synchronous: 'off' });
    const generatedAt = performance.now();
    const events = await generate(source, target);
    await source.close();
    console.error(`  (generated ${fmt(events)} events in ${fmt((performance.now() - generatedAt) / 1000, 1)} s)`);

    const raw = openSqliteEventStore(join(dir, 'raw.db'));
    const rawAppendPerSecond = await measureRawAppends(raw, { events: Math.min(events, 200_000), batch: 1_000 });
    await raw.close();

    const file = join(dir, 'export.jsonl');
    const exportSeconds = await timedCli(['export', '--out', file], sourcePath);
    const importPath = join(dir, 'imported.db');
    const importSeconds = await timedCli(['import', file], importPath);
    const reimportSeconds = await timedCli(['import', file], importPath);

    const imported = openSqliteEventStore(importPath);
    const head = await imported.headPosition();
    await imported.close();
    if (head !== events) throw new Error(`the imported log ends at ${head}, expected ${events}`);

    return {
      events,
      fileBytes: statSync(file).size,
      exportPerSecond: events / exportSeconds,
      importPerSecond: events / importSeconds,
      importSeconds,
      reimportPerSecond: events / reimportSeconds,
      rawAppendPerSecond,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a CLI command against the SQLite log at `path`; seconds it took. Its stderr goes to ours. */
async function timedCli(argv: string[], path: string): Promise<number> {
  const started = performance.now();
  const code = await runCli(argv, { out: () => {}, err: (line) => console.error(`  ${line}`), env: { EVENTSTORE_URL: `sqlite:${path}` } });
  if (code !== 0) throw new Error(`planline ${argv.join(' ')} exited with ${code}`);
  return (performance.now() - started) / 1000;
}

export function printImport(r: ImportBenchResult): void {
  console.log(`planline import of a ${fmt(r.events)}-event export (${fmt(r.fileBytes / 1024 / 1024, 0)} MiB), into an empty durable log`);
  console.log(`  baseline: raw durable appends of 1,000 events each ${fmt(r.rawAppendPerSecond)} events/s`);
  console.log(
    `  import: ${fmt(r.importPerSecond)} events/s, ${fmt(r.importSeconds, 1)} s (target ≥ 50,000: ${r.importPerSecond >= 50_000 ? 'met' : 'MISSED'}), ` +
      `ratio to raw appends ${fmt(r.importPerSecond / r.rawAppendPerSecond, 2)}`,
  );
  console.log(`  import again (nothing to write): ${fmt(r.reimportPerSecond)} events/s; export: ${fmt(r.exportPerSecond)} events/s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printImport(await benchImport());
}
