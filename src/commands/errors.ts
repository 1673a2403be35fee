// Domain errors carry their HTTP meaning (status + stable code) so the edge maps them without a table
// of special cases, and every refusal explains itself.

export type ErrorStatus = 400 | 403 | 404 | 409 | 412 | 413 | 415 | 422 | 503;

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    /** Stable, machine-readable code (part of the API). */
    readonly code: string,
    readonly status: ErrorStatus,
    message: string,
    /** Extra members of the problem document (current state, legal transitions, …). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const invalid = (message: string, details?: Record<string, unknown>) =>
  new DomainError('validation_failed', 400, message, details);

export const invalidPlan = (message: string, details?: Record<string, unknown>) =>
  new DomainError('invalid_plan', 400, message, details);

export const notFound = (what: 'session' | 'plan' | 'approval' | 'subtask', id: string) =>
  new DomainError(`${what}_not_found`, 404, `${what} ${id} does not exist`, { [`${what}_id`]: id });

/** The principal may see the session (so a 404 would lie) but not do this to it. */
export const forbidden = (message: string, details?: Record<string, unknown>) => new DomainError('forbidden', 403, message, details);

export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new DomainError(code, 409, message, details);

export const staleRevision = (stream: string, expected: number, actual: number) =>
  new DomainError('stale_revision', 412, `${stream} is at revision ${actual}, not ${expected} (If-Match)`, {
    expected_revision: expected,
    current_revision: actual,
  });
