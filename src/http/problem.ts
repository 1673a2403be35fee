// application/problem+json (RFC 9457) with a stable `code`: every refusal the API makes, in one shape.
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError } from '../commands/errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [member: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `urn:planline:problem:${code}`, title: TITLES[status] ?? 'Error', status, code, detail, ...extra };
}

export function problemResponse(c: Context, p: Problem, headers: Record<string, string> = {}): Response {
  return c.body(JSON.stringify(p), p.status as ContentfulStatusCode, {
    'content-type': 'application/problem+json',
    ...headers,
  });
}

export function problemOf(error: DomainError): Problem {
  return problem(error.status, error.code, error.message, error.details);
}

/** Thrown by edge code to answer with a problem (caught by the app's error handler). */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly problem: Problem,
    readonly headers: Record<string, string> = {},
  ) {
    super(problem.detail);
  }
}

export const fail = (status: number, code: string, detail: string, extra?: Record<string, unknown>): never => {
  throw new ProblemError(problem(status, code, detail, extra));
};
