// Identical appends in flight at once reach the server once.
import { describe, expect, it } from 'vitest';
import { inFlight } from '../../src/events/in-flight.js';

describe('in-flight merging', () => {
  it('runs identical concurrent work once and gives every caller its result', async () => {
    const merged = inFlight<number>();
    let runs = 0;
    let release!: (value: number) => void;
    const work = () => {
      runs += 1;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const calls = [merged.run('k', work), merged.run('k', work), merged.run('k', work)];
    await Promise.resolve();
    expect(merged.size).toBe(1);
    release(7);
    expect(await Promise.all(calls)).toEqual([7, 7, 7]);
    expect(runs).toBe(1);
    expect(merged.size).toBe(0);
  });

  it('keeps different keys apart, and runs a key again once the first run settled', async () => {
    const merged = inFlight<string>();
    expect(await Promise.all([merged.run('a', async () => 'A'), merged.run('b', async () => 'B')])).toEqual(['A', 'B']);
    expect(await merged.run('a', async () => 'again')).toBe('again');
  });

  it('shares a failure with every waiting caller, then forgets it', async () => {
    const merged = inFlight<number>();
    const failing = async () => {
      throw new Error('boom');
    };
    const results = await Promise.allSettled([merged.run('k', failing), merged.run('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await merged.run('k', async () => 1)).toBe(1);
  });
});
