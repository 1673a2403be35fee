// execute_command: a shell in the workspace, stdout and stderr captured (each up to a limit), the exit
// code reported, and a timeout that kills the whole process group, so `sleep 100 &` children go too.
import { spawn } from 'node:child_process';

export interface CommandOutcome {
  exit_code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  duration_ms: number;
}

/** Output kept per stream; more is cut with a note (a model reads it, and a runaway build may print megabytes). */
export const MAX_OUTPUT_BYTES = 256 * 1024;

export function runCommand(command: string, cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<CommandOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, { cwd, env, shell: true, detached: process.platform !== 'win32', stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = capture();
    const stderr = capture();
    child.stdout.on('data', stdout.add);
    child.stderr.on('data', stderr.add);
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve({
        exit_code: code,
        ...(signal ? { signal } : {}),
        stdout: stdout.text(),
        stderr: spawnError ? `${stderr.text()}${spawnError.message}` : stderr.text(),
        timed_out: timedOut,
        duration_ms: Date.now() - started,
      });
    };
    child.once('error', (error) => finish(null, null, error));
    // 'close' waits for the pipes, which a backgrounded grandchild may hold open: the group kill above
    // ends those too on a timeout.
    child.once('close', (code, signal) => finish(code, signal));
  });
}

function capture() {
  const chunks: Buffer[] = [];
  let size = 0;
  let dropped = 0;
  return {
    add: (chunk: Buffer) => {
      if (size >= MAX_OUTPUT_BYTES) {
        dropped += chunk.length;
        return;
      }
      const kept = chunk.subarray(0, MAX_OUTPUT_BYTES - size);
      chunks.push(kept);
      size += kept.length;
      dropped += chunk.length - kept.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8') + (dropped > 0 ? `\n… (${dropped} more bytes not shown)` : ''),
  };
}
