// `planline chat` options: where the server is, which session, who we are, which directory the tools
// may touch. Every mistake is a UsageError (exit code 2) before anything connects.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCommandArgs } from '../args.js';
import { UsageError } from '../errors.js';

export const CHAT = 'chat';
export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface ChatOptions {
  /** The server's base URL (http or https), without a trailing slash. */
  url: string;
  /** A session to join; undefined: start a new one. */
  session: string | undefined;
  /** A JWT sent as `Authorization: Bearer …` on the upgrade. */
  token: string | undefined;
  /** The directory tool calls run in (absolute). */
  workspace: string;
  /** Approve plans and tool calls without asking. */
  yes: boolean;
  /** Print raw frames as JSON lines instead of the readable form. */
  json: boolean;
}

export function parseChatOptions(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): ChatOptions {
  const { values, positionals } = parseCommandArgs(CHAT, args, {
    url: { type: 'string' },
    session: { type: 'string' },
    token: { type: 'string' },
    workspace: { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`, CHAT);
  return {
    url: serverUrl(values.url ?? DEFAULT_URL),
    session: sessionId(values.session),
    token: token(values.token ?? env.PLANLINE_TOKEN),
    workspace: workspace(values.workspace ?? cwd, cwd),
    yes: values.yes ?? false,
    json: values.json ?? false,
  };
}

function serverUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url expects a URL such as ${DEFAULT_URL}, got ${JSON.stringify(raw)}`, CHAT);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new UsageError(`--url expects an http:// or https:// URL, got ${JSON.stringify(raw)}`, CHAT);
  }
  if (url.search !== '' || url.hash !== '') throw new UsageError('--url takes no query or fragment', CHAT);
  url.protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol;
  return url.toString().replace(/\/+$/, '');
}

function sessionId(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === '' || /[\s/?#]/.test(raw)) throw new UsageError(`--session expects a session id, got ${JSON.stringify(raw)}`, CHAT);
  return raw;
}

function token(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (/\s/.test(raw.trim())) throw new UsageError('the token (--token or PLANLINE_TOKEN) must be one word: the JWT itself, without "Bearer"', CHAT);
  return raw.trim();
}

function workspace(raw: string, cwd: string): string {
  const path = resolve(cwd, raw);
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    throw new UsageError(`--workspace ${JSON.stringify(raw)} does not exist`, CHAT);
  }
  if (!isDirectory) throw new UsageError(`--workspace ${JSON.stringify(raw)} is not a directory`, CHAT);
  return path;
}
