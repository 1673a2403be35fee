// Reading a request: JSON bodies (415 when not JSON, 400 when malformed or invalid), queries, the
// command id (Idempotency-Key), If-Match. Every failure here is a ProblemError and changes nothing.
import type { Context } from 'hono';
import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { newId, uuidv5 } from '../events/ids.js';
import type { CommandMeta } from '../commands/handle.js';
import { fail } from './problem.js';

function issuesOf(issues: readonly v.BaseIssue<unknown>[]) {
  return issues.map((issue) => ({ path: v.getDotPath(issue) ?? '', message: issue.message }));
}

function invalidRequest(where: 'body' | 'query', issues: readonly v.BaseIssue<unknown>[]): never {
  const errors = issuesOf(issues);
  const first = errors[0];
  return fail(400, 'validation_failed', `invalid ${where}: ${first?.path ? `${first.path} ` : ''}${first?.message ?? 'invalid'}`, { errors });
}

declare module 'hono' {
  interface ContextVariableMap {
    /** Largest request body this app accepts (set by the app; see app.ts). */
    maxBodyBytes: number;
  }
}

const DEFAULT_MAX_BODY_BYTES = 1_048_576;

const tooLarge = (max: number): never =>
  fail(413, 'payload_too_large', `the body is larger than ${max} bytes`, { max_bytes: max });

/**
 * The body as text, at most `maxBodyBytes`. With a Content-Length (the usual case) the header is
 * checked first and the body read through the server's fast path; a chunked body is counted as it
 * streams in. (Hono's bodyLimit middleware would build a full web Request for every request, GETs
 * included, which cost more than the rest of a plan read.)
 */
async function bodyText(c: Context): Promise<string> {
  const max = c.get('maxBodyBytes') ?? DEFAULT_MAX_BODY_BYTES;
  const length = c.req.header('content-length');
  if (length !== undefined) {
    if (Number(length) > max) tooLarge(max);
    return c.req.text();
  }
  const stream = c.req.raw.body;
  if (!stream) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      tooLarge(max);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The JSON body, validated. An empty body reads as `{}` (commands such as suspend take no fields);
 * anything else must be application/json.
 */
export async function jsonBody<S extends v.GenericSchema>(c: Context, schema: S, prepare?: (raw: unknown) => unknown): Promise<v.InferOutput<S>> {
  const text = await bodyText(c);
  bodyHashes.set(c.req.raw, createHash('sha256').update(text).digest('base64url'));
  let raw: unknown = {};
  if (text.trim() !== '') {
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/([\w.+-]+\+)?json\b/i.test(type)) {
      fail(415, 'unsupported_media_type', `send JSON with content-type application/json (got ${type || 'none'})`);
    }
    try {
      raw = JSON.parse(text);
    } catch (error) {
      fail(400, 'malformed_json', `the body is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(400, 'validation_failed', 'the body must be a JSON object');
  }
  const result = v.safeParse(schema, prepare ? prepare(raw) : raw);
  if (!result.success) invalidRequest('body', result.issues);
  return (result as v.SafeParseResult<S> & { success: true }).output;
}

export function query<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, c.req.query());
  if (!result.success) invalidRequest('query', result.issues);
  return (result as v.SafeParseResult<S> & { success: true }).output;
}

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Hash of each request's body, recorded when it is read, for the idempotency fingerprint. */
const bodyHashes = new WeakMap<Request, string>();

/** The command's id: derived from the client's Idempotency-Key when given (so a retry is recognised), else new. */
export function commandMeta(c: Context): CommandMeta {
  const key = c.req.header('idempotency-key');
  if (key !== undefined && !KEY_PATTERN.test(key)) {
    fail(400, 'validation_failed', 'Idempotency-Key must be 1-200 visible ASCII characters');
  }
  const ifMatch = c.req.header('if-match');
  let expected: number | undefined;
  if (ifMatch !== undefined && ifMatch.trim() !== '*') {
    const match = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(ifMatch);
    if (!match) fail(400, 'validation_failed', 'If-Match must be an ETag from this API, such as "3"');
    expected = Number(match![1]);
  }
  return {
    // The key names a request to one resource: the same key sent to another route (another plan or
    // session, another command) is another command. Used bare, a key reused for a different command
    // would be answered as a duplicate of the first, acknowledging something never recorded.
    // It names one principal's request too: another principal's same key is another command (else it
    // would be answered with the first principal's result, ids and all).
    command_id: key !== undefined ? uuidv5(`idempotency-key ${c.get('principal')?.id ?? ''} ${c.req.method} ${c.req.path} ${key}`) : newId(),
    ...(c.req.header('x-correlation-id') ? { correlation_id: c.req.header('x-correlation-id') } : {}),
    ...(expected !== undefined ? { expected_revision: expected } : {}),
    ...(key !== undefined ? { request_fingerprint: bodyHashes.get(c.req.raw) ?? 'no-body' } : {}),
    // Every event the command writes records who sent it (set by the access middleware).
    ...(c.get('principal') !== undefined ? { principal: c.get('principal').id } : {}),
  };
}

export const etag = (revision: number) => `"${revision}"`;
