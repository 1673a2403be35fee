// The client feed (DESIGN §5), as the projection that writes it and the edges that stream it share it:
// what a frame is, where a session's frames live (a feed in the read-model store, a topic on the bus),
// what travels on the bus, and the epoch that names the feed's incarnation.
import { createHash } from 'node:crypto';
import { subjectToken } from '../bus/subjects.js';

/** Bump when frames could be numbered differently for the same log: the epoch changes with it. */
export const FEED_VERSION = 3;

/** Frames retained per session unless configured (FEED_HISTORY). */
export const DEFAULT_FEED_HISTORY = 1_000;

/**
 * A frame as the IDE receives it (minus `epoch`, which the edge stamps on send). Every field the IDE's
 * MessageModel reads has its Dart type: strings, objects, booleans, never null (nulls are left out).
 */
export interface FeedFrame {
  type: string;
  /** Readable text: the IDE shows it as a chat bubble for every type it does not special-case. */
  content: string;
  /** 1, 2, 3 … per session, without gaps. */
  offset: number;
  session_id: string;
  /** When the event behind the frame was decided (ISO). */
  timestamp: string;
  metadata: { fsm_state: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** The feed of one session in the read-model store. */
export const feedName = (sessionId: string): string => `session:${sessionId}`;
export const FEED_PREFIX = 'session:';

/** The bus topic a session's live frames are published on (any session id, as one subject token). */
export const feedTopic = (sessionId: string): string => `feed.${subjectToken(sessionId)}`;

/**
 * The feed's incarnation: the same log projected by the same feed version numbers every frame the same
 * way (the embedded mode rebuilds at every start and keeps its epoch); another log or version does not.
 */
export function feedEpoch(logId: string, version: number = FEED_VERSION): string {
  return createHash('sha256').update(`planline feed ${version} of log ${logId}`).digest('base64url').slice(0, 16);
}

/** One batch's frames of one session, as published on the bus. */
export interface FeedMessage {
  epoch: string;
  session_id: string;
  frames: FeedFrame[];
}

export function encodeFeedMessage(message: FeedMessage): Uint8Array {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** Undefined for anything that is not a feed message (a foreign publisher, a newer shape). */
export function decodeFeedMessage(data: Uint8Array): FeedMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, session_id, frames } = value as Record<string, unknown>;
  if (typeof epoch !== 'string' || typeof session_id !== 'string' || !Array.isArray(frames)) return undefined;
  const valid = frames.every(
    (frame: unknown) =>
      typeof frame === 'object' && frame !== null && Number.isSafeInteger((frame as FeedFrame).offset) && typeof (frame as FeedFrame).type === 'string',
  );
  return valid ? (value as FeedMessage) : undefined;
}

/** A JSON value without nulls and undefined members, recursively: the IDE casts `as String?` and friends. */
export function withoutNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.filter((item) => item !== null && item !== undefined).map(withoutNulls) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== null && item !== undefined) out[key] = withoutNulls(item);
    return out as T;
  }
  return value;
}
