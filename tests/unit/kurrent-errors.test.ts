// What callers of the KurrentDB adapter see when the client fails, and which failures are worth sending
// the same append again for. The errors are the client's own: its classes, built the way its converters
// build them from gRPC statuses, server error details and the Rust bridge's errors.
import {
  AccessDeniedError,
  CancelledError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  StreamDeletedError,
  TimeoutError,
  UnavailableError,
  UnknownError,
  WrongExpectedVersionError,
  convertToCommandError,
} from '@kurrent/kurrentdb-client';
import { convertBridgeError } from '@kurrent/kurrentdb-client/dist/utils/convertBridgeError.js';
import { describe, expect, it } from 'vitest';
import { isResendable, translateAppendError, translateError } from '../../src/events/kurrent-errors.js';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type ExpectedRevision } from '../../src/events/store.js';

/** A gRPC status error as @grpc/grpc-js rejects with it (code, details, trailing metadata). */
function grpcStatus(code: number, details: string): Error {
  const metadata = { get: (): string[] => [], getMap: (): Record<string, string> => ({}) };
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

/** An error as the Rust bridge throws it (a plain Error with a name). */
function bridgeError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, metadata: {} });
}

const expectations = (entries: [string, ExpectedRevision][]) => new Map(entries);

describe('append failures', () => {
  it('names the stream of a multi-stream conflict and the expectation the caller gave for it', () => {
    // The details the server attaches to a failed AppendSession (StreamRevisionConflictErrorDetails).
    const error = WrongExpectedVersionError.fromRevisionConflict({ stream: 'plan-2', expectedRevision: '-1', actualRevision: '0' });
    const translated = translateAppendError(error, expectations([['session-1', 3], ['plan-2', 'no_stream']]));
    expect(translated).toBeInstanceOf(WrongExpectedRevisionError);
    expect(translated).toMatchObject({ stream: 'plan-2', expected: 'no_stream', actual: 0 });
  });

  it('reports a missing stream as no_stream, and keeps the caller\'s own words for `any`', () => {
    const missing = WrongExpectedVersionError.fromRevisionConflict({ stream: 's', expectedRevision: '4', actualRevision: '-1' });
    expect(translateAppendError(missing, expectations([['s', 4]]))).toMatchObject({ stream: 's', expected: 4, actual: 'no_stream' });
    const single = new WrongExpectedVersionError(undefined, { streamName: 's', expected: 'stream_exists', current: 'no_stream' });
    expect(translateAppendError(single, expectations([['s', 'stream_exists']]))).toMatchObject({ expected: 'stream_exists', actual: 'no_stream' });
  });

  it('turns a too-large append into the caller\'s RangeError, not an outage', () => {
    expect(translateAppendError(MaxAppendSizeExceededError.fromMaxAppendSize(1024), new Map())).toBeInstanceOf(RangeError);
  });

  it('sends again only when the outcome is unknown and a repeat is answered idempotently', () => {
    // The server drops an identical append while the first is not yet indexed; the batch append then
    // reports the server's Timeout status as a deadline error.
    expect(isResendable(new DeadlineExceededError())).toBe(true);
    expect(isResendable(convertToCommandError(grpcStatus(4, 'Deadline exceeded') as never))).toBe(true);
    // The server's own write timeout on the unary path: ABORTED without details, an UnknownError to the client.
    const serverTimeout = convertToCommandError(grpcStatus(10, 'Operation timed out: Prepare phase timeout.') as never);
    expect(serverTimeout).toBeInstanceOf(UnknownError);
    expect(isResendable(serverTimeout)).toBe(true);
    expect(isResendable(convertToCommandError(grpcStatus(14, 'Server Is Not Ready') as never))).toBe(true);
    expect(isResendable(convertToCommandError(grpcStatus(13, 'internal') as never))).toBe(true); // the client calls INTERNAL unavailable
    expect(isResendable(grpcStatus(14, 'No connection established'))).toBe(true); // raw, as the capability probe rejects
    expect(isResendable(new CancelledError())).toBe(true);
    expect(isResendable(new TimeoutError())).toBe(true);
    expect(isResendable(new NotLeaderError({ metadata: { 'leader-endpoint-host': 'n2', 'leader-endpoint-port': '2113' } } as never))).toBe(true);

    expect(isResendable(new WrongExpectedVersionError(undefined, { streamName: 's', expected: 0n, current: 1n }))).toBe(false);
    expect(isResendable(new AccessDeniedError())).toBe(false);
    expect(isResendable(new UnknownError())).toBe(false);
    expect(isResendable(new TypeError('bad input'))).toBe(false);
  });

  it('says unavailable for everything that is the store\'s trouble', () => {
    for (const error of [new DeadlineExceededError(), new UnavailableError(), new AccessDeniedError(), grpcStatus(14, 'refused')]) {
      expect(translateAppendError(error, new Map())).toBeInstanceOf(EventStoreUnavailableError);
    }
  });
});

describe('read failures', () => {
  it('maps the bridge\'s unknown errors (an invalid position, a server fault) to unavailable, with the cause kept', () => {
    const unknown = convertBridgeError(bridgeError('SomethingNew', 'Trying to read from an invalid position.'));
    expect(unknown).toBeInstanceOf(UnknownError);
    const translated = translateError(unknown);
    expect(translated).toBeInstanceOf(EventStoreUnavailableError);
    expect(translated.message).toContain('invalid position');
    expect(translated.cause).toBe(unknown);
  });

  it('maps the bridge\'s transport errors to unavailable too', () => {
    for (const name of ['UnavailableError', 'DeadlineExceededError', 'AccessDeniedError', 'NotLeaderError']) {
      const metadata = name === 'NotLeaderError' ? { 'leader-endpoint-host': 'n2', 'leader-endpoint-port': '2113' } : {};
      const error = convertBridgeError(Object.assign(bridgeError(name, name), { metadata }));
      expect(translateError(error)).toBeInstanceOf(EventStoreUnavailableError);
    }
    expect(translateError(StreamDeletedError.fromStreamName('gone'))).toBeInstanceOf(EventStoreUnavailableError);
  });

  it('lets the port\'s own errors and input errors through unchanged', () => {
    const conflict = new WrongExpectedRevisionError('s', 0, 1);
    const bad = new RangeError('maxCount must be a non-negative integer');
    expect(translateError(conflict)).toBe(conflict);
    expect(translateError(bad)).toBe(bad);
  });
});
