import { describe, expect, it } from 'vitest';
import { formatDuration, MAX_DURATION_S, parseDuration } from '../../src/commands/duration.js';
import { DomainError } from '../../src/commands/errors.js';

describe('parseDuration', () => {
  it.each<[number | string, number]>([
    [0, 0],
    [600, 600],
    [90.4, 90],
    ['45', 45],
    ['5 min', 300],
    ['5 mins', 300],
    ['5m', 300],
    ['5 Minutes', 300],
    ['90s', 90],
    ['90 sec', 90],
    ['90 seconds', 90],
    ['1h 30m', 5400],
    ['1h30m', 5400],
    ['1 h 30 min', 5400],
    ['1 hour and 30 minutes', 5400],
    ['1 hour, 30 minutes', 5400],
    ['2 hours', 7200],
    ['2 HRS', 7200],
    ['1.5 h', 5400],
    ['1.5 hours', 5400],
    ['.5 h', 1800],
    ['1 day', 86_400],
    ['1:30:00', 5400],
    ['0:05:30', 330],
    ['PT1H30M', 5400],
    ['pt45s', 45],
    ['~10 min', 600],
    ['about 10 minutes', 600],
    ['approx. 2 h', 7200],
    ['5-10 min', 600],
    ['5 to 10 minutes', 600],
    ['  10 min.  ', 600],
    ['0 min', 0],
  ])('%j is %d seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each<[number | string, RegExp]>([
    ['', /is empty/],
    ['   ', /is empty/],
    ['soon', /is not a duration/],
    ['5 parsecs', /is not a duration/],
    ['min 5', /is not a duration/],
    ['5 min later', /is not a duration/],
    ['-5 min', /is negative/],
    [-1, /is negative/],
    ['1:30', /ambiguous/],
    [Number.NaN, /not a finite number/],
    [Number.POSITIVE_INFINITY, /not a finite number/],
    [MAX_DURATION_S + 1, /longer than the maximum/],
    ['9999 hours', /longer than the maximum/],
  ])('%j is refused with a clear 400', (input, message) => {
    let caught: unknown;
    try {
      parseDuration(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DomainError);
    const error = caught as DomainError;
    expect(error.status).toBe(400);
    expect(error.code).toBe('validation_failed');
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/^estimated_time /);
  });

  it('names the field it was given', () => {
    expect(() => parseDuration('soon', 'subtasks[2].estimated_time')).toThrow(/^subtasks\[2\]\.estimated_time "soon" is not a duration/);
  });

  it('accepts the week limit itself', () => {
    expect(parseDuration('7 days')).toBe(MAX_DURATION_S);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0 min'],
    [45, '45 s'],
    [60, '1 min'],
    [300, '5 min'],
    [600, '10 min'],
    [90, '1 min 30 s'],
    [3600, '1 h'],
    [5400, '1 h 30 min'],
    [7200, '2 h'],
    [7290, '2 h 1 min 30 s'],
    [90_000, '25 h'],
    [299.6, '5 min'],
    [-5, '0 min'],
  ])('%d seconds read "%s"', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('round-trips: what it writes, parseDuration reads back', () => {
    for (const seconds of [0, 1, 45, 59, 60, 61, 300, 3599, 3600, 5400, 86_399, MAX_DURATION_S]) {
      expect(parseDuration(formatDuration(seconds))).toBe(seconds);
    }
  });
});
