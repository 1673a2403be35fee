// The client's errors → the port's errors. Pure: given an error the client threw, say what the caller
// of the port sees, and whether sending the same append again is safe and worth it.
import {
  AppendRecordSizeExceededError,
  CancelledError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  TimeoutError,
  TransactionMaxSizeExceededError,
  UnavailableError,
  WrongExpectedVersionError,
  convertToCommandError,
  isCommandError,
} from '@kurrent/kurrentdb-client';
import { EventStoreUnavailableError, WrongExpectedRevisionError, type ExpectedRevision } from './store.js';

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_ABORTED = 10;

/**
 * The append may or may not have been written, and the same append (same ids, same expected state)
 * sent again is answered idempotently by the server. That covers:
 * - DeadlineExceededError: the usual face of a write the server dropped on purpose. An append that
 *   arrives while an identical one is written but not yet indexed is dropped "for the client to retry"
 *   (StorageWriterService, CommitDecision.IdempotentNotReady); the request then times out on the server
 *   (a Timeout status, which the client's batch append turns into this error) or at the client deadline.
 * - The server's own commit/prepare timeout on the unary append path: gRPC ABORTED, which the client
 *   turns into a TimeoutError only when the status carries details, and into an UnknownError (keeping
 *   the code) when it does not, as the server's timeout does not.
 * - UnavailableError (also the client's mapping of INTERNAL and DATA_LOSS), NotLeaderError (the client
 *   reconnects to the leader it was told about), CancelledError (cancelled by the server).
 */
export function isResendable(error: unknown): boolean {
  const e = asClientError(error);
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return (
    code === GRPC_ABORTED ||
    code === GRPC_DEADLINE_EXCEEDED ||
    e instanceof DeadlineExceededError ||
    e instanceof TimeoutError ||
    e instanceof UnavailableError ||
    e instanceof NotLeaderError ||
    e instanceof CancelledError
  );
}

/**
 * An append's failure for the caller. A conflict names the stream the server names (for a multi-stream
 * append, the first stream whose expectation failed) with the expectation the caller gave for it.
 */
export function translateAppendError(error: unknown, expectedByStream: ReadonlyMap<string, ExpectedRevision>): Error {
  const e = asClientError(error);
  if (e instanceof WrongExpectedVersionError) {
    const stream = e.streamName;
    const expected = expectedByStream.get(stream) ?? fromClientState(e.expectedState);
    const actual = typeof e.actualState === 'bigint' && e.actualState >= 0n ? Number(e.actualState) : 'no_stream';
    return new WrongExpectedRevisionError(stream, expected, actual);
  }
  // Too big is the caller's input, not the store's health: say so, nothing was written.
  if (e instanceof MaxAppendSizeExceededError) return new RangeError(`append exceeds the server's maximum append size of ${e.maxAppendSize} bytes`);
  if (e instanceof AppendRecordSizeExceededError) return new RangeError(`event ${e.recordId} in ${e.stream} is ${e.size} bytes, over the server's ${e.maxSize}`);
  if (e instanceof TransactionMaxSizeExceededError) return new RangeError(`append is ${e.size} bytes, over the server's ${e.maxSize} for one commit`);
  return translateError(e);
}

/**
 * Anything else the client throws is the store's trouble, not the caller's: EventStoreUnavailableError
 * (with the client's error as its cause). The port's own errors and input errors pass through.
 */
export function translateError(error: unknown): Error {
  if (
    error instanceof EventStoreUnavailableError ||
    error instanceof WrongExpectedRevisionError ||
    error instanceof TypeError ||
    error instanceof RangeError
  ) {
    return error;
  }
  const e = asClientError(error);
  const kind = e instanceof Error ? e.constructor.name : typeof e;
  const message = e instanceof Error ? e.message : String(e);
  return new EventStoreUnavailableError(`KurrentDB: ${kind}${message ? `: ${message}` : ''}`, { cause: error });
}

/** Raw gRPC errors (the capability probe rejects with one) as the client's typed errors. */
function asClientError(error: unknown): unknown {
  if (!(error instanceof Error) || isCommandError(error)) return error;
  if (typeof (error as { code?: unknown }).code !== 'number') return error;
  return convertToCommandError(error as Parameters<typeof convertToCommandError>[0]);
}

function fromClientState(state: unknown): ExpectedRevision {
  if (typeof state === 'bigint') return Number(state);
  return state === 'no_stream' || state === 'stream_exists' ? state : 'any';
}
