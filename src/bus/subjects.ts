// Names on the bus: what callers may pass, and the broker subjects and stream names derived from the
// prefix. Both adapters validate the same way, so a name that works embedded works on NATS.

/** Letters, digits, `_` and `-`: safe in subjects, stream names and consumer names alike. */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** One subject token: session ids and the like (`.` separates tokens, so it is not allowed). */
const TOKEN = /^[A-Za-z0-9_:~=-]+$/;
const MAX_SUBJECT_LENGTH = 256;

export const DEFAULT_PREFIX = 'planline';

export function assertPrefix(prefix: string): void {
  if (typeof prefix !== 'string' || !NAME.test(prefix)) {
    throw new TypeError(`bus prefix ${JSON.stringify(prefix)} must be 1-64 letters, digits, _ or -`);
  }
}

/** A job kind is one token of a subject and part of a consumer name. */
export function assertKind(kind: string): void {
  if (typeof kind !== 'string' || !NAME.test(kind)) {
    throw new TypeError(`job kind ${JSON.stringify(kind)} must be 1-64 letters, digits, _ or -`);
  }
}

/** A topic to publish on: dot-separated tokens, no wildcards. */
export function assertTopic(subject: string): void {
  assertSubject(subject, false);
}

/** A topic to subscribe to: like a publish subject, optionally ending in `.>` (or just `>`). */
export function assertTopicPattern(pattern: string): void {
  assertSubject(pattern, true);
}

function assertSubject(subject: string, wildcardAllowed: boolean): void {
  const what = wildcardAllowed ? 'subscription subject' : 'subject';
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
    throw new TypeError(`${what} must be a non-empty string of at most ${MAX_SUBJECT_LENGTH} characters`);
  }
  const tokens = subject.split('.');
  tokens.forEach((token, index) => {
    if (wildcardAllowed && token === '>' && index === tokens.length - 1) return;
    if (!TOKEN.test(token)) {
      const hint = wildcardAllowed ? ' (the only wildcard is a trailing ">")' : ' (no wildcards)';
      throw new TypeError(
        `${what} ${JSON.stringify(subject)} has an invalid token ${JSON.stringify(token)}: tokens are letters, digits, _ : ~ = -, separated by dots${hint}`,
      );
    }
  });
}

/**
 * Any string as one subject token, reversibly: characters outside the token alphabet (and `~`, the
 * escape itself) become `~XX` hex of their UTF-8 bytes. `subjectToken('a.b')` is `a~2Eb`.
 */
export function subjectToken(value: string): string {
  if (value.length === 0) return '~';
  let out = '';
  for (const char of value) {
    if (/^[A-Za-z0-9_:=-]$/.test(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Broker-side names derived from one prefix. */
export interface BusNames {
  topic(subject: string): string;
  /** The caller's subject back from a broker subject under the topic namespace. */
  topicOf(brokerSubject: string): string;
  job(kind: string): string;
  /** The kind back from a broker job subject. */
  kindOf(brokerSubject: string): string;
  dead(kind: string): string;
  readonly allJobs: string;
  readonly allDead: string;
  readonly jobStream: string;
  readonly deadStream: string;
  consumer(kind: string): string;
}

export function busNames(prefix: string): BusNames {
  assertPrefix(prefix);
  // Topics live under their own token so a topic can never land in the job stream's subjects.
  const topics = `${prefix}.topics.`;
  const jobs = `${prefix}.jobs.`;
  return {
    topic: (subject) => `${topics}${subject}`,
    topicOf: (brokerSubject) => brokerSubject.slice(topics.length),
    job: (kind) => `${jobs}${kind}`,
    kindOf: (brokerSubject) => brokerSubject.slice(jobs.length),
    dead: (kind) => `${prefix}.dead.${kind}`,
    allJobs: `${prefix}.jobs.>`,
    allDead: `${prefix}.dead.>`,
    jobStream: `${prefix}_jobs`,
    deadStream: `${prefix}_dead`,
    consumer: (kind) => `${prefix}_${kind}`,
  };
}

/** The dedupe id travels as a message header: printable, one line. */
export function assertJobId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || /[\x00-\x1f\x7f]/.test(id)) {
    throw new TypeError('job id must be a non-empty string of at most 256 printable characters (derive it from the command id)');
  }
}
