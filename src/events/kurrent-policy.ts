// Decisions the KurrentDB adapter takes, as pure functions: how long to wait before sending an append
// again or resubscribing, and what a server can do given what it says about itself at connect.

/** An append is sent at most this many times in all (the first send and its resends). */
export const MAX_APPEND_SENDS = 4;

/**
 * Milliseconds to wait before sending an append again after send number `sends` failed with an outcome
 * the server can answer idempotently, or undefined when it has been sent often enough.
 *
 * Short and bounded: the usual cause is an identical append the server dropped because the first copy
 * was written but not yet indexed, which takes milliseconds; the server has already spent its own
 * write timeout (2 s by default) before the failure reaches us. Jitter (0.5–1× the step) keeps two
 * processes resending the same command from arriving together again.
 */
export function resendDelayMs(sends: number, random: () => number = Math.random): number | undefined {
  if (!Number.isInteger(sends) || sends < 1 || sends >= MAX_APPEND_SENDS) return undefined;
  const step = 50 * 4 ** (sends - 1); // 50, 200, 800 ms
  return Math.round(step * (0.5 + random() / 2));
}

/**
 * Milliseconds to wait before resubscribing after `failures` consecutive drops (1 for the first).
 * Never gives up (only close() or a handler error end a subscription), but backs off to 5 s so a
 * server that is down is not hammered, with jitter so many subscribers do not return in step.
 */
export function resubscribeDelayMs(failures: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(failures));
  const step = Math.min(100 * 2 ** (n - 1), 5_000);
  return Math.round(step * (0.5 + random() / 2));
}

/** "25.1.0.1234" or "24.10.0-rc1" → [major, minor, patch]; undefined when it is not a version. */
export function parseServerVersion(version: string): [number, number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

export interface MultiStreamSupport {
  atomicMultiStream: boolean;
  /** One line for the connect log and for the error of a refused multi-stream append. */
  reason: string;
}

/**
 * Whether appendMulti can be one atomic commit on this server. The authority is the server's own list
 * of methods (ServerFeatures): the client's multiStreamAppend calls the v2 AppendSession method and
 * refuses when the server does not list it. The version only explains the answer: a server before 25.1
 * has no multi-stream append at all; a later one without AppendSession speaks an older, incompatible
 * draft of it (or hides it), and this client cannot use it.
 */
export function multiStreamSupport(serverVersion: string, appendSessionListed: boolean): MultiStreamSupport {
  const parsed = parseServerVersion(serverVersion);
  const named = parsed ? `KurrentDB ${serverVersion}` : `a KurrentDB server of unknown version (${serverVersion || 'none reported'})`;
  if (appendSessionListed) {
    return { atomicMultiStream: true, reason: `${named} offers multi-stream append: appendMulti is one atomic commit` };
  }
  const tooOld = parsed !== undefined && (parsed[0] < 25 || (parsed[0] === 25 && parsed[1] < 1));
  const why = tooOld
    ? 'multi-stream append needs KurrentDB 25.1 or later'
    : 'the server does not offer the multi-stream append method this client uses (kurrentdb.protocol.v2.streams.StreamsService/AppendSession)';
  return { atomicMultiStream: false, reason: `${named}: ${why}; appendMulti takes one stream at a time` };
}
