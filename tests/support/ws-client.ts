// A test IDE on a real socket (`ws`): it keeps every frame the server sends, checks each one against the
// IDE's MessageModel (tests/support/ide-models.ts, from the Dart files) as it arrives, and tracks the
// feed's offsets so a test can assert that it saw every offset exactly once, in order, across reconnects.
import * as v from 'valibot';
import WebSocket from 'ws';
import { declaredNulls, MessageModel, PlanSummary } from './ide-models.js';

/**
 * What would break the IDE decoding a frame: a field of the wrong type for MessageModel, a plan_summary
 * the plan approval dialog cannot read, or a null anywhere at the top level (the seed's gateway left
 * nulls out, and so does Planline).
 */
export function frameProblems(frame: unknown): string[] {
  const problems: string[] = [];
  const issues = (schema: v.GenericSchema, value: unknown, where: string) => {
    const result = v.safeParse(schema, value);
    if (!result.success) problems.push(...result.issues.map((issue) => `${where}${v.getDotPath(issue) ?? ''}: ${issue.message}`));
    problems.push(...declaredNulls(schema, value).map((path) => `${where}${path}: null`));
  };
  issues(MessageModel, frame, '');
  if (typeof frame === 'object' && frame !== null) {
    const record = frame as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) if (value === null) problems.push(`${key}: null`);
    if (record.plan_summary !== undefined) issues(PlanSummary, record.plan_summary, 'plan_summary.');
  }
  return problems;
}

export function assertMessageModel(frame: unknown): void {
  const problems = frameProblems(frame);
  if (problems.length > 0) throw new Error(`frame does not decode as the IDE's MessageModel (${problems.join('; ')}): ${JSON.stringify(frame).slice(0, 500)}`);
}

export type Frame = Record<string, any> & { type: string };

export interface FeedClient {
  ws: WebSocket;
  /** Every frame received, in order. */
  frames: Frame[];
  /** Frames that would break the IDE's MessageModel decoding (tests assert this stays empty). */
  invalid: string[];
  /** Resolves when a frame matching `predicate` has arrived (already, or later). */
  waitFor(predicate: (frame: Frame) => boolean, timeoutMs?: number, what?: string): Promise<Frame>;
  /** The feed frames received (those with an offset, snapshots excluded). */
  feed(): Frame[];
  /** Offset of the newest feed frame or snapshot received (what a client resumes after). */
  lastOffset(): number | undefined;
  epoch(): string | undefined;
  send(frame: unknown): void;
  sendRaw(data: string | Buffer): void;
  /** Resolves with the close code and reason once the socket is closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

export const wsUrl = (httpUrl: string, path: string, query: Record<string, string | number | undefined> = {}) => {
  const url = new URL(path, httpUrl.replace(/^http/, 'ws'));
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
  return url.toString();
};

export function connect(httpUrl: string, sessionId: string, query: Record<string, string | number | undefined> = {}): Promise<FeedClient> {
  const ws = new WebSocket(wsUrl(httpUrl, `/api/v1/ws/${encodeURIComponent(sessionId)}`, query));
  const frames: Frame[] = [];
  const invalid: string[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data, binary) => {
    if (binary) {
      invalid.push('a binary frame');
      return;
    }
    let frame: Frame;
    try {
      frame = JSON.parse(data.toString()) as Frame;
      assertMessageModel(frame);
    } catch (error) {
      invalid.push((error as Error).message);
      return;
    }
    frames.push(frame);
    for (const wake of [...waiters]) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const wake of [...waiters]) wake();
    });
  });
  ws.on('error', () => {});

  const client: FeedClient = {
    ws,
    frames,
    invalid,
    waitFor(predicate, timeoutMs = 5_000, what = 'a matching frame') {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (invalid.length > 0) return finish(new Error(`the server sent a frame the IDE cannot decode: ${invalid[0]}`));
          const found = frames.find(predicate);
          if (found) return finish(undefined, found);
          if (ws.readyState === WebSocket.CLOSED) finish(new Error(`the socket closed before ${what} arrived; got ${JSON.stringify(frames.map((f) => f.type))}`));
        };
        const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}; got ${JSON.stringify(frames.map((f) => [f.type, f.offset]))}`)), timeoutMs);
        const finish = (error?: Error, frame?: Frame) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(frame!);
        };
        waiters.add(check);
        check();
      });
    },
    feed: () => frames.filter((f) => typeof f.offset === 'number' && f.type !== 'snapshot'),
    lastOffset() {
      for (let i = frames.length - 1; i >= 0; i--) if (typeof frames[i]!.offset === 'number') return frames[i]!.offset as number;
      return undefined;
    },
    epoch() {
      for (let i = frames.length - 1; i >= 0; i--) if (typeof frames[i]!.epoch === 'string') return frames[i]!.epoch as string;
      return undefined;
    },
    send: (frame) => ws.send(JSON.stringify(frame)),
    sendRaw: (data) => ws.send(data),
    closed,
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await closed;
    },
  };

  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused with HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/**
 * The offsets a client saw across its connections, each connection's frames in order: every offset
 * from the first one it started after up to the last, exactly once. Snapshots move the baseline.
 */
export function assertExactlyOnce(connections: readonly FeedClient[], startAfter = 0): number[] {
  const seen: number[] = [];
  let last = startAfter;
  for (const client of connections) {
    for (const frame of client.frames) {
      if (typeof frame.offset !== 'number') continue;
      if (frame.type === 'snapshot') {
        last = frame.offset;
        continue;
      }
      if (frame.offset !== last + 1) throw new Error(`offset ${frame.offset} after ${last}: ${frame.offset <= last ? 'a duplicate' : 'a gap'}`);
      seen.push(frame.offset);
      last = frame.offset;
    }
  }
  return seen;
}

/** The event log's head position (from /metrics): connect with `wait_for` it to see everything written so far. */
export async function logHead(httpUrl: string): Promise<number> {
  const read = () => fetch(`${httpUrl}/api/v1/metrics`).then((r) => r.text());
  // A keep-alive connection idle for long may be closed by the server just as it is reused: read again.
  const text = await read().catch(read);
  return Number(/^planline_event_log_head_position (\d+)/m.exec(text)?.[1]);
}
