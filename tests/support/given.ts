// Given/when/then for deciders: given past events, when a command, then new events or an error.
import { expect } from 'vitest';
import { validateEvent, type DomainEvent } from '../../src/events/catalog.js';
import { DomainError } from '../../src/commands/errors.js';
import type { Decider } from '../../src/commands/decider.js';

export function given<S, C, E extends DomainEvent>(decider: Decider<S, C, E>, history: E[], base?: (s: S) => S) {
  const fold = (events: E[]) => events.reduce((s, e) => decider.evolve(s, e), base ? base(decider.initialState()) : decider.initialState());
  const state = fold(history);
  return {
    state,
    when(command: C) {
      const run = () => decider.decide(command, state);
      return {
        then(expected: E[]) {
          const events = run();
          events.forEach((e) => validateEvent(e));
          expect(events).toEqual(expected);
          return { state: events.reduce((s, e) => decider.evolve(s, e), state), events };
        },
        thenNothing() {
          expect(run()).toEqual([]);
        },
        thenFails(code: string, message?: RegExp): DomainError {
          let caught: unknown;
          try {
            run();
          } catch (error) {
            caught = error;
          }
          expect(caught, `expected ${code}`).toBeInstanceOf(DomainError);
          const error = caught as DomainError;
          expect(error.code).toBe(code);
          if (message) expect(error.message).toMatch(message);
          return error;
        },
      };
    },
  };
}
