// The chat's socket to GET /api/v1/ws/:session_id, kept open as the IDE keeps it: a new session through
// `new_<random>` (the id adopted from session_info), the bearer token on the upgrade, reconnects with
// backoff that resume with ?since=<last offset>&epoch=<epoch>, and offsets already delivered dropped, so
// every feed frame reaches the chat once. Refusals that a retry cannot fix (auth, a missing session, a
// frame flood) end it instead.
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { Frame } from './tool-calls.js';

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES: Readonly<Record<number, string>> = {
  1008: 'the server closed the socket for a policy violation (too many frames)',
  4401: 'the token has expired: start again with a fresh one',
  4403: 'this principal may not watch the session',
  4404: 'the session does not exist (or is not yours)',
};
/** HTTP answers to the upgrade after which reconnecting cannot help. */
const FINAL_STATUSES = new Set([400, 401, 403, 404]);

export interface FeedSocketOptions {
  /** http(s)://host:port of the server. */
  url: string;
  session: string | undefined;
  token: string | undefined;
  onFrame(frame: Frame): void;
  /** A line for the user about the connection (connected, lost, reconnecting). */
  onNotice(line: string): void;
  /** First backoff delay (ms); doubles up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Reconnect attempts in a row before giving up. */
  maxAttempts?: number;
}

export interface FeedSocket {
  /** Connects; resolves once open, rejects (with a message naming the URL) when the first connect fails. */
  open(): Promise<void>;
  /** Send now, or as soon as the socket is open again. */
  send(frame: Frame): void;
  /** Resolves once every frame sent so far has been written to the socket (or the socket is gone). */
  flushed(): Promise<void>;
  /** Resolves with a reason when the socket is lost for good (not after close()). */
  lost: Promise<string>;
  /** Close for good (no reconnect). */
  close(): Promise<void>;
  sessionId(): string | undefined;
  lastOffset(): number | undefined;
}

export function feedSocket(options: FeedSocketOptions): FeedSocket {
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5_000;
  const maxAttempts = options.maxAttempts ?? 60;
  const temporary = `new_${randomBytes(6).toString('hex')}`;
  let session = options.session;
  let offset: number | undefined;
  let epoch: string | undefined;
  let ws: WebSocket | undefined;
  let closing = false;
  let connectedOnce = false;
  let attempts = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  const outbox: string[] = [];
  let writes: Array<Promise<void>> = [];
  let loseWith: (reason: string) => void = () => {};
  const lost = new Promise<string>((resolve) => (loseWith = resolve));

  const base = options.url.replace(/^http/, 'ws');
  const target = () => {
    const url = new URL(`/api/v1/ws/${encodeURIComponent(session ?? temporary)}`, `${base}/`);
    if (session !== undefined && offset !== undefined) {
      url.searchParams.set('since', String(offset));
      if (epoch !== undefined) url.searchParams.set('epoch', epoch);
    }
    return url.toString();
  };

  const deliver = (data: WebSocket.RawData, binary: boolean) => {
    if (binary) return;
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString());
    } catch {
      options.onNotice('the server sent a frame that is not JSON; skipped');
      return;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame) || typeof (frame as Frame).type !== 'string') {
      options.onNotice('the server sent a frame without a type; skipped');
      return;
    }
    const f = frame as Frame;
    if (f.type === 'session_info' && session === undefined && typeof f.session_id === 'string') session = f.session_id;
    if (f.type === 'snapshot') {
      // The snapshot describes the feed up to its offset: what follows continues from there.
      if (typeof f.offset === 'number') offset = f.offset;
      if (typeof f.epoch === 'string') epoch = f.epoch;
    } else if (typeof f.offset === 'number') {
      const sameEpoch = typeof f.epoch !== 'string' || epoch === undefined || f.epoch === epoch;
      if (sameEpoch && offset !== undefined && f.offset <= offset) return;
      offset = f.offset;
      if (typeof f.epoch === 'string') epoch = f.epoch;
    }
    options.onFrame(f);
  };

  const write = (socket: WebSocket, data: string) => {
    writes.push(new Promise<void>((resolve) => socket.send(data, () => resolve())));
  };

  const connect = () =>
    new Promise<void>((resolve, reject) => {
      const url = target();
      const socket = new WebSocket(url, {
        ...(options.token !== undefined ? { headers: { authorization: `Bearer ${options.token}` } } : {}),
        handshakeTimeout: 10_000,
      });
      ws = socket;
      let opened = false;
      let refusal: string | undefined;
      socket.on('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        refusal = `the server answered the upgrade with HTTP ${status}${status === 401 ? ' (a token is required, or it was refused: --token or PLANLINE_TOKEN)' : ''}`;
        if (FINAL_STATUSES.has(status)) refusal = `final:${refusal}`;
        response.resume();
        socket.terminate();
      });
      socket.on('open', () => {
        opened = true;
        attempts = 0;
        connectedOnce = true;
        for (const data of outbox.splice(0)) write(socket, data);
        resolve();
      });
      socket.on('message', deliver);
      socket.on('error', (error) => {
        refusal ??= error.message;
      });
      socket.on('close', (code, reasonBuffer) => {
        if (ws === socket) ws = undefined;
        const reason = reasonBuffer.toString();
        if (!opened) {
          const why = (refusal ?? `closed (${code})`).replace(/^final:/, '');
          if (!connectedOnce) return reject(new Error(`cannot connect to ${url}: ${why}`));
          if (refusal?.startsWith('final:')) return loseWith(`cannot reconnect to ${url}: ${why}`);
          return retry(why);
        }
        if (closing) return;
        const final = FINAL_CLOSES[code];
        if (final) return loseWith(`the socket was closed (${code}${reason ? ` ${reason}` : ''}): ${final}`);
        retry(`the socket closed (${code}${reason ? ` ${reason}` : ''})`);
      });
    });

  function retry(why: string): void {
    if (closing) return;
    attempts += 1;
    if (attempts > maxAttempts) return loseWith(`gave up after ${maxAttempts} attempts to reconnect: ${why}`);
    const delay = Math.min(maxDelay, initialDelay * 2 ** Math.min(attempts - 1, 16));
    options.onNotice(`connection lost: ${why}; reconnecting in ${delay} ms`);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closing) return;
      connect().then(
        () => options.onNotice(`reconnected${offset !== undefined ? `, resuming after offset ${offset}` : ''}`),
        () => {},
      );
    }, delay);
  }

  return {
    open: () => connect(),
    send(frame) {
      const data = JSON.stringify(frame);
      if (ws !== undefined && ws.readyState === WebSocket.OPEN) write(ws, data);
      else outbox.push(data);
    },
    async flushed() {
      const pending = writes;
      writes = [];
      await Promise.all(pending);
    },
    lost,
    async close() {
      closing = true;
      if (retryTimer) clearTimeout(retryTimer);
      const socket = ws;
      if (!socket || socket.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.terminate();
          resolve();
        }, 1_000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
        else socket.close(1000, 'bye');
      });
    },
    sessionId: () => session,
    lastOffset: () => offset,
  };
}
