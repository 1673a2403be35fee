// The production shape on one machine, for tests that kill it: Planline built once into a temp dir,
// then several `node main.js` processes with their own ROLES on shared PostgreSQL, Redis and NATS.
// Each process can be killed (SIGKILL: no shutdown code runs) and started again with the same port.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Compile src/ once (the same tsc build as `npm run build`) into a fresh dir under .vitest-tmp/ (inside
 * the repo, so the build finds node_modules); returns its main.js.
 */
export function buildOnce(): string {
  mkdirSync(join(ROOT, '.vitest-tmp'), { recursive: true });
  const out = mkdtempSync(join(ROOT, '.vitest-tmp', 'build-'));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const built = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
  const copied = spawnSync(process.execPath, [join(ROOT, 'scripts', 'copy-workers.mjs'), out], { encoding: 'utf8' });
  if (copied.status !== 0) throw new Error(`copying the worker files failed: ${copied.stderr}`);
  return join(out, 'src', 'main.js');
}

/** Remove a build made by buildOnce. */
export function removeBuild(main: string): void {
  rmSync(join(main, '..', '..'), { recursive: true, force: true });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PlanlineProcess {
  readonly name: string;
  /** Base URL of its HTTP edge, when it has one. */
  readonly url: string | undefined;
  running(): boolean;
  /** Start (or start again, on the same port); resolves once an edge answers /health. */
  start(): Promise<void>;
  /** SIGKILL: no graceful shutdown, nothing flushed beyond what was acknowledged. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** What it wrote to stderr lately (for failure messages). */
  output(): string;
}

export function planlineProcess(main: string, name: string, env: Record<string, string>, port?: number): PlanlineProcess {
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let stderr = '';
  const url = port === undefined ? undefined : `http://127.0.0.1:${port}`;
  return {
    name,
    url,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async start() {
      const started = spawn(process.execPath, [main], {
        env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, ...(port !== undefined ? { PORT: String(port) } : {}) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = started;
      started.stderr!.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-8_000);
      });
      exited = new Promise((resolve) => started.once('exit', (code) => resolve(code)));
      if (url === undefined) return;
      for (const deadline = Date.now() + 30_000; ; ) {
        if (started.exitCode !== null) throw new Error(`${name} exited during start-up: ${stderr}`);
        const up = await fetch(`${url}/api/v1/health`).then((r) => r.ok, () => false);
        if (up) return;
        if (Date.now() > deadline) throw new Error(`${name} did not answer /health within 30 s: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
      child.kill('SIGTERM');
      return exited;
    },
    output: () => stderr,
  };
}
