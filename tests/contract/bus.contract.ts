// The bus contract: every Bus adapter runs this same suite. Timings are short (ack waits of a few
// hundred ms) so it runs in seconds; assertions about time only check that something did not happen
// too early, never how fast anything is.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusClosedError, type Bus, type BusOptions, type DeadLetter, type Job, type JsonObject } from '../../src/bus/bus.js';
import { subjectToken } from '../../src/bus/subjects.js';
import { createLogger } from '../../src/log.js';

export interface BusFixture {
  /** A bus on `options.prefix`; every test passes a fresh prefix, so tests never share subjects. */
  open(options: BusOptions & { prefix: string }): Promise<Bus>;
  /** Remove what a prefix left on the broker. */
  cleanup?(prefix: string): Promise<void>;
}

const ACK_WAIT = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Polls until `check` is true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A handler that holds its job until released: a worker stuck (or killed) mid-job. */
export function stuckHandler() {
  const held: Job[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  return { held, release, handler: async (job: Job) => void (held.push(job), await released) };
}

let prefixes = 0;
export const freshPrefix = (label: string) => `pl${label}${process.pid}x${Date.now().toString(36)}x${prefixes++}`;

export function busContract(name: string, fixture: BusFixture): void {
  describe(`Bus contract: ${name}`, () => {
    let prefix: string;
    let bus: Bus;
    let logs: { level: string; msg: string; [field: string]: unknown }[];
    const opened: { bus: Bus; prefix: string }[] = [];
    const stuck: (() => void)[] = [];

    /** Another bus for this test (its own prefix unless `sharePrefix`), closed afterwards. */
    const openAnother = async (options: BusOptions = {}) => {
      const busPrefix = options.prefix ?? freshPrefix('c');
      const another = await fixture.open({ logger: createLogger('debug', { write: (line) => logs.push(JSON.parse(line)) }), ...options, prefix: busPrefix });
      opened.push({ bus: another, prefix: busPrefix });
      return another;
    };
    const stuckJob = () => {
      const handler = stuckHandler();
      stuck.push(handler.release);
      return handler;
    };
    const consume = (kind: string, handler: (job: Job) => Promise<void> | void, options: Parameters<Bus['consume']>[2] = {}) =>
      bus.consume(kind, handler, { ackWaitMs: ACK_WAIT, backoffMs: [20], ...options });

    beforeEach(async () => {
      logs = [];
      prefix = freshPrefix('c');
      bus = await openAnother({ prefix });
    });

    afterEach(async () => {
      for (const release of stuck.splice(0)) release();
      for (const { bus: each, prefix: eachPrefix } of opened.splice(0)) {
        await each.close();
        await fixture.cleanup?.(eachPrefix);
      }
    });

    describe('topics', () => {
      it('fans a message out to every subscriber of its subject, in publish order', async () => {
        const received: string[][] = [[], [], []];
        for (const inbox of received) await bus.subscribe('feed.s1', (data, subject) => inbox.push(`${subject}:${text(data)}`));
        for (const n of [1, 2, 3, 4, 5]) bus.publish('feed.s1', bytes(`frame ${n}`));
        await waitFor('every subscriber to get five frames', () => received.every((inbox) => inbox.length === 5));
        for (const inbox of received) expect(inbox).toEqual([1, 2, 3, 4, 5].map((n) => `feed.s1:frame ${n}`));
      });

      it('a trailing > receives every subject below it; an exact subject only its own', async () => {
        const below: string[] = [];
        const everything: string[] = [];
        const exact: string[] = [];
        await bus.subscribe('feed.>', (_data, subject) => below.push(subject));
        await bus.subscribe('>', (_data, subject) => everything.push(subject));
        await bus.subscribe('feed.a', (_data, subject) => exact.push(subject));
        for (const subject of ['feed.a', 'feed.b.c', 'feedback', 'other.x', 'feed.a.deeper']) bus.publish(subject, bytes('x'));
        await waitFor('the catch-all to see all five', () => everything.length === 5);
        expect(below.sort()).toEqual(['feed.a', 'feed.a.deeper', 'feed.b.c']);
        expect(exact).toEqual(['feed.a']);
        expect(everything.sort()).toEqual(['feed.a', 'feed.a.deeper', 'feed.b.c', 'feedback', 'other.x']);
      });

      it('unsubscribe stops delivery to that subscriber only', async () => {
        const gone: string[] = [];
        const staying: string[] = [];
        const subscription = await bus.subscribe('feed.s', (data) => gone.push(text(data)));
        await bus.subscribe('feed.s', (data) => staying.push(text(data)));
        bus.publish('feed.s', bytes('1'));
        await waitFor('the first frame', () => gone.length === 1 && staying.length === 1);
        subscription.unsubscribe();
        subscription.unsubscribe(); // twice is harmless
        bus.publish('feed.s', bytes('2'));
        await waitFor('the second frame', () => staying.length === 2);
        await sleep(50);
        expect(gone).toEqual(['1']);
      });

      it('delivers after publish returns, never inside it, and a failing subscriber does not stop the others', async () => {
        let publishing = false;
        const seenDuringPublish: boolean[] = [];
        await bus.subscribe('feed.s', () => {
          throw new Error('subscriber bug');
        });
        await bus.subscribe('feed.s', () => seenDuringPublish.push(publishing));
        publishing = true;
        bus.publish('feed.s', bytes('x'));
        publishing = false;
        await waitFor('delivery', () => seenDuringPublish.length === 1);
        expect(seenDuringPublish).toEqual([false]);
        await waitFor('the failure to be reported', () => logs.some((entry) => String(entry.error).includes('subscriber bug')));
      });

      it('does not deliver what another prefix publishes', async () => {
        const other = await openAnother();
        const received: string[] = [];
        await bus.subscribe('>', (_data, subject) => received.push(subject));
        other.publish('feed.s', bytes('theirs'));
        bus.publish('feed.mine', bytes('ours'));
        await waitFor('our own frame', () => received.length === 1);
        await sleep(50);
        expect(received).toEqual(['feed.mine']);
      });

      it('refuses subjects with illegal characters or misplaced wildcards with a TypeError', async () => {
        for (const subject of ['', 'feed s', 'feed..s', '.feed', 'feed.', 'feed.*', 'feed.>', '>', 'féed', 'a/b', 'x'.repeat(300)]) {
          expect(() => bus.publish(subject, bytes('x')), subject).toThrow(TypeError);
        }
        for (const pattern of ['feed.*', '>.feed', 'feed.>.x', 'feed>', 'feed s.>', '']) {
          await expect(bus.subscribe(pattern, () => {}), pattern).rejects.toThrow(TypeError);
        }
      });

      it('carries any session id as one token through subjectToken', async () => {
        const sessionId = 'team.alpha session/ü~1';
        const subject = `feed.${subjectToken(sessionId)}`;
        const received: string[] = [];
        await bus.subscribe(subject, (data, from) => received.push(`${from}|${text(data)}`));
        await bus.subscribe(`feed.${subjectToken('team')}.>`, () => received.push('wrong session'));
        bus.publish(subject, bytes('hello'));
        await waitFor('the frame', () => received.length >= 1);
        await sleep(30);
        expect(received).toEqual([`${subject}|hello`]);
        expect(subjectToken('a.b')).not.toBe(subjectToken('a~2Eb'));
      });
    });

    describe('jobs', () => {
      it('delivers an enqueued job once, with its id, kind, payload and attempt 1', async () => {
        const payload: JsonObject = { plan: 'p1', subtask: 2, tags: ['a', 'ü'], nested: { ok: true, none: null, n: -1.5 } };
        expect(await bus.enqueue('agent-run', payload, { id: 'cmd-1' })).toEqual({ duplicate: false });
        const seen: Job[] = [];
        const consumer = await consume('agent-run', (job) => void seen.push(job));
        await bus.enqueue('agent-run', { late: true }, { id: 'cmd-2' });
        await waitFor('both jobs', () => seen.length === 2);
        expect(seen.map(({ id, kind, payload: p, attempt }) => ({ id, kind, payload: p, attempt }))).toEqual([
          { id: 'cmd-1', kind: 'agent-run', payload, attempt: 1 },
          { id: 'cmd-2', kind: 'agent-run', payload: { late: true }, attempt: 1 },
        ]);
        await sleep(ACK_WAIT * 2);
        expect(seen).toHaveLength(2);
        await consumer.stop();
      });

      it('keeps kinds apart', async () => {
        const runs: string[] = [];
        const attempts: string[] = [];
        await consume('run', (job) => void runs.push(job.id));
        await consume('attempt', (job) => void attempts.push(job.id));
        await bus.enqueue('run', {}, { id: 'r1' });
        await bus.enqueue('attempt', {}, { id: 'a1' });
        await bus.enqueue('run', {}, { id: 'r2' });
        await waitFor('three jobs', () => runs.length + attempts.length === 3);
        expect(runs.sort()).toEqual(['r1', 'r2']);
        expect(attempts).toEqual(['a1']);
      });

      it('competing consumers each get distinct jobs, and together all of them', async () => {
        const byConsumer: string[][] = [[], []];
        for (const taken of byConsumer) {
          await consume('work', async (job) => {
            taken.push(job.id);
            await sleep(15);
          });
        }
        const ids = Array.from({ length: 12 }, (_, n) => `job-${n}`);
        for (const id of ids) await bus.enqueue('work', { id }, { id });
        await waitFor('all twelve', () => byConsumer.flat().length === 12);
        await sleep(ACK_WAIT * 2);
        expect(byConsumer.flat().sort()).toEqual([...ids].sort());
        for (const taken of byConsumer) expect(taken.length).toBeGreaterThan(0);
      });

      it('drops a repeated id within the duplicate window, across kinds too', async () => {
        const seen: string[] = [];
        await consume('work', (job) => void seen.push(`${job.kind}:${JSON.stringify(job.payload)}`));
        await consume('other', (job) => void seen.push(`${job.kind}:${JSON.stringify(job.payload)}`));
        expect(await bus.enqueue('work', { n: 1 }, { id: 'cmd-7' })).toEqual({ duplicate: false });
        expect(await bus.enqueue('work', { n: 2 }, { id: 'cmd-7' })).toEqual({ duplicate: true });
        expect(await bus.enqueue('other', { n: 3 }, { id: 'cmd-7' })).toEqual({ duplicate: true });
        await waitFor('the job', () => seen.length === 1);
        await sleep(100);
        expect(seen).toEqual(['work:{"n":1}']);
      });

      it('accepts the same id again once the duplicate window has passed', async () => {
        const windowed = await openAnother({ duplicateWindowMs: 400 });
        const seen: number[] = [];
        await windowed.consume('work', (job) => void seen.push(job.payload.n as number));
        expect(await windowed.enqueue('work', { n: 1 }, { id: 'cmd-8' })).toEqual({ duplicate: false });
        expect(await windowed.enqueue('work', { n: 2 }, { id: 'cmd-8' })).toEqual({ duplicate: true });
        await sleep(700);
        expect(await windowed.enqueue('work', { n: 3 }, { id: 'cmd-8' })).toEqual({ duplicate: false });
        await waitFor('two jobs', () => seen.length === 2);
        expect(seen).toEqual([1, 3]);
      });

      it('nak with a delay redelivers after the delay with attempt + 1', async () => {
        const deliveries: { attempt: number; at: number }[] = [];
        await consume('work', (job) => {
          deliveries.push({ attempt: job.attempt, at: Date.now() });
          if (job.attempt === 1) job.nak(400);
        });
        await bus.enqueue('work', {}, { id: 'j' });
        await waitFor('the retry', () => deliveries.length === 2);
        expect(deliveries.map((d) => d.attempt)).toEqual([1, 2]);
        expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(300);
        await sleep(ACK_WAIT * 2);
        expect(deliveries).toHaveLength(2);
      });

      it('a handler that throws is retried after its backoff, and the failure is reported', async () => {
        const deliveries: { attempt: number; at: number }[] = [];
        await consume(
          'work',
          (job) => {
            deliveries.push({ attempt: job.attempt, at: Date.now() });
            if (job.attempt < 3) throw new Error(`flaky ${job.attempt}`);
          },
          { backoffMs: (attempt) => attempt * 200 },
        );
        await bus.enqueue('work', {}, { id: 'j' });
        await waitFor('the third attempt', () => deliveries.length === 3);
        expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(150);
        expect(deliveries[2]!.at - deliveries[1]!.at).toBeGreaterThanOrEqual(300);
        expect(logs.filter((entry) => entry.msg === 'job handler failed').map((entry) => entry.error)).toEqual(['flaky 1', 'flaky 2']);
        expect(await bus.readDeadLetters('work')).toEqual([]);
      });

      it('a handler changing its payload does not change what the retry sees', async () => {
        const seen: JsonObject[] = [];
        await consume('work', (job) => {
          seen.push(structuredClone(job.payload));
          (job.payload as { list: number[] }).list.push(99);
          if (job.attempt === 1) throw new Error('retry me');
        });
        await bus.enqueue('work', { list: [1] }, { id: 'j' });
        await waitFor('the retry', () => seen.length === 2);
        expect(seen).toEqual([{ list: [1] }, { list: [1] }]);
      });

      it('a job never settled is redelivered after the ack wait, and exactly one ack wins', async () => {
        const stuckWorker = stuckJob();
        await consume('work', stuckWorker.handler);
        await bus.enqueue('work', { n: 1 }, { id: 'j' });
        await waitFor('the stuck worker to hold the job', () => stuckWorker.held.length === 1);
        const heldAt = Date.now();
        const rescued: { attempt: number; at: number }[] = [];
        await consume('work', (job) => void rescued.push({ attempt: job.attempt, at: Date.now() }));
        await waitFor('the redelivery', () => rescued.length === 1);
        expect(rescued[0]!.attempt).toBe(2);
        expect(rescued[0]!.at - heldAt).toBeGreaterThanOrEqual(ACK_WAIT * 0.8);
        // The stuck worker finally finishes and acks a delivery that is no longer current.
        stuckWorker.release();
        await sleep(ACK_WAIT * 2.5);
        expect(stuckWorker.held).toHaveLength(1);
        expect(rescued).toHaveLength(1);
        expect(await bus.readDeadLetters('work')).toEqual([]);
      });

      it('working() keeps a job longer than the ack wait from being redelivered', async () => {
        const deliveries: number[] = [];
        const done: string[] = [];
        const work = async (job: Job) => {
          deliveries.push(job.attempt);
          for (let beat = 0; beat < 8; beat++) {
            await sleep(ACK_WAIT / 3);
            job.working();
          }
          done.push(job.id);
        };
        await consume('long', work);
        await consume('long', work); // an idle competitor that would take a redelivery
        await bus.enqueue('long', {}, { id: 'j' });
        await waitFor('the long job to finish', () => done.length === 1, 10_000);
        await sleep(ACK_WAIT * 2);
        expect(deliveries).toEqual([1]);
      });

      it('parks a job that fails its last allowed attempt, and reports it once', async () => {
        const attempts: number[] = [];
        const reported: DeadLetter[] = [];
        await consume(
          'work',
          (job) => {
            attempts.push(job.attempt);
            throw new Error('boom');
          },
          { maxDeliver: 3, onDeadLetter: (letter) => void reported.push(letter) },
        );
        await bus.enqueue('work', { plan: 'p' }, { id: 'j-dead' });
        await waitFor('the dead letter', () => reported.length === 1);
        await sleep(ACK_WAIT * 2);
        expect(attempts).toEqual([1, 2, 3]);
        expect(reported).toHaveLength(1);
        expect(reported[0]).toMatchObject({ id: 'j-dead', kind: 'work', payload: { plan: 'p' }, attempts: 3 });
        expect(reported[0]!.reason).toContain('boom');
        expect(Number.isNaN(Date.parse(reported[0]!.at))).toBe(false);
        expect(await bus.readDeadLetters('work')).toEqual(reported);
        expect(await bus.readDeadLetters('other')).toEqual([]);
      });

      it('parks a job whose last delivery was never settled, without running it again', async () => {
        const stuckWorker = stuckJob();
        await consume('work', stuckWorker.handler, { maxDeliver: 1 });
        await bus.enqueue('work', { n: 1 }, { id: 'j-timeout' });
        await waitFor('the stuck worker to hold the job', () => stuckWorker.held.length === 1);
        const ran: number[] = [];
        const reported: DeadLetter[] = [];
        await consume('work', (job) => void ran.push(job.attempt), { maxDeliver: 1, onDeadLetter: (letter) => void reported.push(letter) });
        await waitFor('the dead letter', () => reported.length === 1);
        expect(ran).toEqual([]);
        expect(reported[0]).toMatchObject({ id: 'j-timeout', payload: { n: 1 }, attempts: 1 });
        expect(reported[0]!.reason).toMatch(/ack wait/);
        stuckWorker.release();
        await sleep(ACK_WAIT * 2);
        expect(reported).toHaveLength(1);
        expect(await bus.readDeadLetters('work')).toHaveLength(1);
      });

      it('term() parks the job at once with its reason', async () => {
        const attempts: number[] = [];
        const reported: DeadLetter[] = [];
        await consume(
          'work',
          (job) => {
            attempts.push(job.attempt);
            job.term('the plan no longer exists');
            job.ack(); // ignored: the first settlement wins
          },
          { maxDeliver: 5, onDeadLetter: (letter) => void reported.push(letter) },
        );
        await bus.enqueue('work', {}, { id: 'j-term' });
        await waitFor('the dead letter', () => reported.length === 1);
        await sleep(ACK_WAIT * 2);
        expect(attempts).toEqual([1]);
        expect(reported).toEqual([expect.objectContaining({ id: 'j-term', attempts: 1, reason: 'the plan no longer exists' })]);
        expect(await bus.readDeadLetters('work')).toEqual(reported);
      });

      it('a nak on the last allowed attempt parks the job', async () => {
        const reported: DeadLetter[] = [];
        await consume('work', (job) => job.nak(10), { maxDeliver: 2, onDeadLetter: (letter) => void reported.push(letter) });
        await bus.enqueue('work', {}, { id: 'j-nak' });
        await waitFor('the dead letter', () => reported.length === 1);
        expect(reported[0]).toMatchObject({ id: 'j-nak', attempts: 2 });
      });

      it('reads dead letters oldest first, up to a limit', async () => {
        await consume('work', (job) => job.term(`reason ${job.id}`));
        for (const id of ['d1', 'd2', 'd3']) {
          await bus.enqueue('work', {}, { id });
          await waitFor(`${id} to be parked`, () => logs.some((entry) => entry.msg === 'job parked as a dead letter' && entry.id === id));
        }
        const letters = await bus.readDeadLetters('work');
        expect(letters.map((letter) => letter.id)).toEqual(['d1', 'd2', 'd3']);
        expect((await bus.readDeadLetters('work', { limit: 2 })).map((letter) => letter.id)).toEqual(['d1', 'd2']);
        expect(await bus.readDeadLetters('work', { limit: 0 })).toEqual([]);
        await expect(bus.readDeadLetters('work', { limit: -1 })).rejects.toThrow(TypeError);
      });

      it('stop() waits for the handlers in flight, which settle; then no more jobs are taken', async () => {
        const events: string[] = [];
        const consumer = await consume('work', async (job) => {
          events.push(`start ${job.id}`);
          await sleep(200);
          events.push(`end ${job.id}`);
        });
        await bus.enqueue('work', {}, { id: 'j1' });
        await waitFor('the job to start', () => events.length === 1);
        await consumer.stop();
        events.push('stopped');
        expect(await consumer.closed()).toBeUndefined();
        await bus.enqueue('work', {}, { id: 'j2' });
        const later: string[] = [];
        await consume('work', (job) => void later.push(`${job.id}#${job.attempt}`));
        await waitFor('the next job', () => later.length === 1);
        await sleep(ACK_WAIT * 2);
        expect(events).toEqual(['start j1', 'end j1', 'stopped']);
        expect(later).toEqual(['j2#1']); // j1 was acked, not redelivered
      });

      it('runs at most `concurrency` jobs at once, and uses them', async () => {
        let running = 0;
        let most = 0;
        let finished = 0;
        await consume(
          'work',
          async () => {
            running += 1;
            most = Math.max(most, running);
            await sleep(80);
            running -= 1;
            finished += 1;
          },
          { concurrency: 3 },
        );
        for (let n = 0; n < 9; n++) await bus.enqueue('work', {}, { id: `c${n}` });
        await waitFor('nine jobs', () => finished === 9);
        expect(most).toBe(3);
      });

      it('refuses bad kinds, ids, payloads and options with a TypeError, enqueueing nothing', async () => {
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        const bad: [string, unknown, unknown][] = [
          ['bad.kind', {}, { id: 'x1' }],
          ['bad kind', {}, { id: 'x2' }],
          ['', {}, { id: 'x3' }],
          ['work', {}, {}],
          ['work', {}, { id: '' }],
          ['work', {}, { id: 'line\nbreak' }],
          ['work', { f: () => 1 }, { id: 'x4' }],
          ['work', { n: 10n }, { id: 'x5' }],
          ['work', { n: Number.NaN }, { id: 'x6' }],
          ['work', { when: new Date() }, { id: 'x7' }],
          ['work', cyclic, { id: 'x8' }],
          ['work', [1, 2], { id: 'x9' }],
          ['work', null, { id: 'x10' }],
          ['work', 'text', { id: 'x11' }],
        ];
        for (const [kind, payload, options] of bad) {
          await expect(bus.enqueue(kind, payload as JsonObject, options as { id: string }), `${kind} ${String(options)}`).rejects.toThrow(TypeError);
        }
        for (const options of [{ concurrency: 0 }, { maxDeliver: 1.5 }, { ackWaitMs: -1 }, { backoffMs: [] }, { backoffMs: [-5] }]) {
          await expect(bus.consume('work', () => {}, options), JSON.stringify(options)).rejects.toThrow(TypeError);
        }
        await expect(bus.consume('bad.kind', () => {})).rejects.toThrow(TypeError);
        const seen: string[] = [];
        await consume('work', (job) => void seen.push(job.id));
        await bus.enqueue('work', { fine: true, skipped: undefined } as unknown as JsonObject, { id: 'ok' });
        await waitFor('the valid job', () => seen.length === 1);
        await sleep(100);
        expect(seen).toEqual(['ok']);
        // The refused ids were never recorded for dedupe either.
        expect(await bus.enqueue('work', {}, { id: 'x4' })).toEqual({ duplicate: false });
      });
    });

    describe('lifecycle', () => {
      it('drain() lets handlers in flight finish (and enqueue follow-up work), then closes', async () => {
        const events: string[] = [];
        const consumer = await consume('work', async (job) => {
          events.push('start');
          await sleep(150);
          const followUp = await bus.enqueue('next', { after: job.id }, { id: `${job.id}-next` });
          events.push(`end duplicate=${followUp.duplicate}`);
        });
        await bus.enqueue('work', {}, { id: 'j' });
        await waitFor('the job to start', () => events.length === 1);
        await bus.drain();
        events.push('drained');
        expect(events).toEqual(['start', 'end duplicate=false', 'drained']);
        expect(await bus.closed()).toBeUndefined();
        expect(await consumer.closed()).toBeUndefined();
      });

      it('refuses use after close with BusClosedError; closed() resolves without a cause', async () => {
        const consumer = await consume('work', () => {});
        await bus.close();
        expect(await bus.closed()).toBeUndefined();
        expect(await consumer.closed()).toBeUndefined();
        expect(() => bus.publish('feed.s', bytes('x'))).toThrow(BusClosedError);
        await expect(bus.subscribe('feed.s', () => {})).rejects.toThrow(BusClosedError);
        await expect(bus.enqueue('work', {}, { id: 'late' })).rejects.toThrow(BusClosedError);
        await expect(bus.consume('work', () => {})).rejects.toThrow(BusClosedError);
        await bus.close(); // twice is harmless
        await bus.drain();
      });
    });
  });
}
