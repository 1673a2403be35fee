// The KurrentDB adapter's decisions: when to send an append again, when to resubscribe, and what a
// server can do given what it says about itself at connect.
import { describe, expect, it } from 'vitest';
import { MAX_APPEND_SENDS, multiStreamSupport, parseServerVersion, resendDelayMs, resubscribeDelayMs } from '../../src/events/kurrent-policy.js';

const lowest = () => 0;
const highest = () => 0.999999;

describe('resending an append whose outcome is unknown', () => {
  it('waits a short, growing time between sends, and stops after a bounded number of sends', () => {
    const delays = Array.from({ length: MAX_APPEND_SENDS + 1 }, (_, i) => resendDelayMs(i + 1, highest));
    expect(delays.slice(0, MAX_APPEND_SENDS - 1)).toEqual([50, 200, 800]);
    expect(delays.slice(MAX_APPEND_SENDS - 1)).toEqual([undefined, undefined]);
  });

  it('spreads resends between half and all of each step, so two processes do not collide again', () => {
    expect(resendDelayMs(1, lowest)).toBe(25);
    expect(resendDelayMs(2, () => 0.5)).toBe(150);
  });

  it('never resends for nonsense attempt numbers', () => {
    expect(resendDelayMs(0)).toBeUndefined();
    expect(resendDelayMs(1.5)).toBeUndefined();
  });
});

describe('resubscribing after a drop', () => {
  it('backs off to at most five seconds and never gives up', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((n) => resubscribeDelayMs(n, highest));
    expect(delays.slice(0, 7)).toEqual([100, 200, 400, 800, 1600, 3200, 5000]);
    expect(delays.slice(7)).toEqual([5000, 5000]);
    expect(resubscribeDelayMs(1, lowest)).toBe(50);
  });
});

describe('multi-stream capability from what the server reports', () => {
  it('parses the versions servers report', () => {
    expect(parseServerVersion('25.1.0.1234')).toEqual([25, 1, 0]);
    expect(parseServerVersion('24.10.0-rc1')).toEqual([24, 10, 0]);
    expect(parseServerVersion('unknown')).toBeUndefined();
  });

  it('uses atomic multi-stream appends when the server lists the method the client calls', () => {
    const support = multiStreamSupport('25.1.0.1234', true);
    expect(support.atomicMultiStream).toBe(true);
    expect(support.reason).toContain('25.1.0.1234');
  });

  it('refuses them on servers before 25.1, naming the version', () => {
    const support = multiStreamSupport('24.10.0.0', false);
    expect(support).toEqual({ atomicMultiStream: false, reason: expect.stringContaining('KurrentDB 24.10.0.0') });
    expect(support.reason).toContain('needs KurrentDB 25.1');
  });

  it('refuses them on a newer server that does not offer this client\'s method, saying which method', () => {
    const support = multiStreamSupport('25.1.0.0', false);
    expect(support.atomicMultiStream).toBe(false);
    expect(support.reason).toContain('StreamsService/AppendSession');
  });

  it('refuses them when the server says nothing about itself', () => {
    const support = multiStreamSupport('unknown', false);
    expect(support.atomicMultiStream).toBe(false);
    expect(support.reason).toContain('unknown version');
  });
});
