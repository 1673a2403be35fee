import { afterEach, describe, expect, it, vi } from 'vitest';
import { onShutdown, runShutdown, type ShutdownStep } from '../../src/lifecycle.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Steps that record when they start and finish, so order and overlap are visible. */
function recordingSteps(names: string[], trace: string[], delayMs = 5): ShutdownStep[] {
  return names.map((name) => ({
    name,
    run: async () => {
      trace.push(`start ${name}`);
      await sleep(delayMs);
      trace.push(`end ${name}`);
    },
  }));
}

describe('runShutdown', () => {
  it('runs the steps one after another, in order, and reports success', async () => {
    const trace: string[] = [];
    const log: string[] = [];
    const report = await runShutdown(recordingSteps(['stop accepting', 'finish in-flight', 'flush', 'close'], trace), {
      timeoutMs: 1_000,
      log: (msg) => log.push(msg),
    });
    expect(trace).toEqual([
      'start stop accepting',
      'end stop accepting',
      'start finish in-flight',
      'end finish in-flight',
      'start flush',
      'end flush',
      'start close',
      'end close',
    ]);
    expect(report).toEqual({
      exitCode: 0,
      completed: ['stop accepting', 'finish in-flight', 'flush', 'close'],
      failed: [],
      timedOutDuring: undefined,
    });
    expect(log.at(-1)).toBe('shutdown: complete');
  });

  it('keeps going after a failed step, then reports exit code 1', async () => {
    const trace: string[] = [];
    const log: string[] = [];
    const steps: ShutdownStep[] = [
      ...recordingSteps(['drain'], trace),
      { name: 'flush', run: () => Promise.reject(new Error('redis gone')) },
      ...recordingSteps(['close'], trace),
    ];
    const report = await runShutdown(steps, { timeoutMs: 1_000, log: (msg) => log.push(msg) });
    expect(trace).toEqual(['start drain', 'end drain', 'start close', 'end close']);
    expect(report).toMatchObject({ exitCode: 1, completed: ['drain', 'close'], failed: ['flush'] });
    expect(log).toContain('shutdown: flush failed: redis gone');
  });

  it('treats a step that throws synchronously like one that rejects', async () => {
    const report = await runShutdown(
      [
        {
          name: 'broken',
          run: () => {
            throw new Error('boom');
          },
        },
      ],
      { timeoutMs: 1_000, log: () => {} },
    );
    expect(report).toMatchObject({ exitCode: 1, failed: ['broken'] });
  });

  it('gives up at the deadline, names the step that hung and starts no further step', async () => {
    const trace: string[] = [];
    const log: string[] = [];
    const hung: ShutdownStep = { name: 'finish in-flight', run: () => new Promise<void>(() => {}) };
    const startedAt = Date.now();
    const report = await runShutdown([...recordingSteps(['stop accepting'], trace), hung, ...recordingSteps(['close'], trace)], {
      timeoutMs: 50,
      log: (msg) => log.push(msg),
    });
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(report).toEqual({
      exitCode: 1,
      completed: ['stop accepting'],
      failed: [],
      timedOutDuring: 'finish in-flight',
    });
    expect(log.at(-1)).toBe('shutdown: timed out after 50 ms during finish in-flight');
    await sleep(20);
    expect(trace).not.toContain('start close');
  });

  it('succeeds at once with no steps', async () => {
    expect(await runShutdown([], { timeoutMs: 10, log: () => {} })).toMatchObject({ exitCode: 0, completed: [] });
  });
});

describe('onShutdown', () => {
  let dispose: (() => void) | undefined;
  afterEach(() => {
    dispose?.();
    dispose = undefined;
    vi.restoreAllMocks();
  });

  /** process.exit replaced by a recorder that resolves when the wiring calls it. */
  function captureExit() {
    const codes: Array<string | number | null | undefined> = [];
    let resolveFirst: (code: string | number | null | undefined) => void = () => {};
    const firstExit = new Promise<string | number | null | undefined>((resolve) => (resolveFirst = resolve));
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      codes.push(code);
      resolveFirst(code);
      return undefined as never;
    });
    return { codes, firstExit };
  }

  it('on SIGTERM runs the steps in order, then exits 0', async () => {
    const exit = captureExit();
    const trace: string[] = [];
    dispose = onShutdown(recordingSteps(['stop', 'drain', 'close'], trace), { timeoutMs: 1_000, log: () => {} });
    process.emit('SIGTERM', 'SIGTERM');
    expect(await exit.firstExit).toBe(0);
    expect(trace).toEqual(['start stop', 'end stop', 'start drain', 'end drain', 'start close', 'end close']);
  });

  it('exits 1 when the steps outlast the timeout', async () => {
    const exit = captureExit();
    dispose = onShutdown([{ name: 'hang', run: () => new Promise<void>(() => {}) }], { timeoutMs: 30, log: () => {} });
    process.emit('SIGINT', 'SIGINT');
    expect(await exit.firstExit).toBe(1);
  });

  it('a second signal forces exit 1 immediately, and the steps run only once', async () => {
    const exit = captureExit();
    const log: string[] = [];
    let runs = 0;
    dispose = onShutdown(
      [
        {
          name: 'slow',
          run: async () => {
            runs += 1;
            await sleep(100);
          },
        },
      ],
      { timeoutMs: 1_000, log: (msg) => log.push(msg) },
    );
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    expect(exit.codes).toEqual([1]);
    expect(log).toContain('shutdown: SIGINT again, forcing exit');
    await sleep(150);
    expect(runs).toBe(1);
  });

  it('removes its handlers when disposed', () => {
    const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') };
    const remove = onShutdown([], { timeoutMs: 10, log: () => {} });
    expect(process.listenerCount('SIGTERM')).toBe(before.term + 1);
    expect(process.listenerCount('SIGINT')).toBe(before.int + 1);
    remove();
    expect(process.listenerCount('SIGTERM')).toBe(before.term);
    expect(process.listenerCount('SIGINT')).toBe(before.int);
  });
});
