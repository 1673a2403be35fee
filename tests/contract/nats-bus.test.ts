// The bus contract against a real NATS JetStream, plus what only a broker shared by processes can
// show: workers in two processes competing, a worker process killed mid-job, a connection cut and
// restored (through a TCP proxy of our own, so the shared server is never restarted).
import { createServer } from 'node:net';
import { jetstreamManager, RetentionPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBus } from '../../src/adapters.js';
import type { Bus, Job } from '../../src/bus/bus.js';
import { openNatsBus, type NatsBusOptions } from '../../src/bus/nats-bus.js';
import { busNames } from '../../src/bus/subjects.js';
import { createLogger } from '../../src/log.js';
import { NATS_URL, serviceAvailable } from '../support/services.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { busContract, freshPrefix, stuckHandler, waitFor } from './bus.contract.js';

const natsUp = await serviceAvailable('nats', NATS_URL);
const quiet = createLogger('error', { write: () => {} });

describe.skipIf(!natsUp)('nats bus', () => {
  let admin: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    admin = await connect({ servers: NATS_URL });
    jsm = await jetstreamManager(admin);
  });
  afterAll(async () => {
    await admin?.close();
  });

  /** Delete the streams (and with them the consumers) a prefix created. */
  const deleteStreams = async (prefix: string) => {
    const names = busNames(prefix);
    for (const stream of [names.jobStream, names.deadStream]) await jsm.streams.delete(stream).catch(() => undefined);
  };

  busContract('nats', { open: (options) => openNatsBus(NATS_URL, options), cleanup: deleteStreams });

  describe('across processes', () => {
    const opened: Bus[] = [];
    const prefixes = new Set<string>();
    const releases: (() => void)[] = [];
    const open = async (prefix: string, options: NatsBusOptions = {}, url = NATS_URL) => {
      prefixes.add(prefix);
      const bus = await openNatsBus(url, { prefix, logger: quiet, ...options });
      opened.push(bus);
      return bus;
    };
    afterEach(async () => {
      for (const release of releases.splice(0)) release();
      for (const bus of opened.splice(0)) await bus.close();
      for (const prefix of prefixes) await deleteStreams(prefix);
      prefixes.clear();
    });

    it('workers in two processes compete for one queue, creating its resources concurrently', async () => {
      const prefix = freshPrefix('n');
      const [first, second] = await Promise.all([open(prefix), open(prefix)]);
      const taken: string[][] = [[], []];
      const work = (into: string[]) => async (job: Job) => {
        into.push(job.id);
        await new Promise((resolve) => setTimeout(resolve, 15));
      };
      await Promise.all([first!.consume('work', work(taken[0]!)), second!.consume('work', work(taken[1]!))]);
      const ids = Array.from({ length: 12 }, (_, n) => `job-${n}`);
      for (const [n, id] of ids.entries()) await (n % 2 ? first! : second!).enqueue('work', {}, { id });
      await waitFor('all twelve', () => taken.flat().length === 12);
      expect(taken.flat().sort()).toEqual([...ids].sort());
      expect(taken[0]!.length).toBeGreaterThan(0);
      expect(taken[1]!.length).toBeGreaterThan(0);
    });

    it('a worker process killed mid-job has its job redelivered to another process', async () => {
      const prefix = freshPrefix('n');
      const survivor = await open(prefix);
      const doomed = await open(prefix);
      const stuck = stuckHandler();
      releases.push(stuck.release);
      const doomedConsumer = await doomed.consume('work', stuck.handler, { ackWaitMs: 300 });
      await survivor.enqueue('work', { n: 1 }, { id: 'j' });
      await waitFor('the doomed worker to hold the job', () => stuck.held.length === 1);
      await doomed.close(); // a kill: nothing is acked or handed back
      expect(await doomedConsumer.closed()).toBeUndefined();
      const rescued: number[] = [];
      await survivor.consume('work', (job) => void rescued.push(job.attempt), { ackWaitMs: 300 });
      await waitFor('the redelivery', () => rescued.length === 1);
      expect(rescued).toEqual([2]);
    });

    it('survives a cut connection: onReconnect fires, subscriptions and consumers carry on', async () => {
      const proxy = await tcpProxy(new URL(NATS_URL));
      try {
        const prefix = freshPrefix('n');
        const direct = await open(prefix);
        const proxied = await open(prefix, { reconnectWaitMs: 50 }, proxy.url);
        const frames: string[] = [];
        const jobs: string[] = [];
        let reconnects = 0;
        let seenByAnother = 0;
        const off = proxied.onReconnect(() => (reconnects += 1));
        proxied.onReconnect(() => (seenByAnother += 1));
        await proxied.subscribe('feed.s', (data) => frames.push(new TextDecoder().decode(data)));
        await proxied.consume('work', (job) => void jobs.push(job.id), { ackWaitMs: 300 });
        direct.publish('feed.s', new TextEncoder().encode('before'));
        await direct.enqueue('work', {}, { id: 'before' });
        await waitFor('traffic before the cut', () => frames.length === 1 && jobs.length === 1);

        proxy.cut();
        await waitFor('the reconnect', () => reconnects === 1);
        direct.publish('feed.s', new TextEncoder().encode('after'));
        await direct.enqueue('work', {}, { id: 'after' });
        await waitFor('traffic after the cut', () => frames.includes('after') && jobs.includes('after'));
        expect(jobs).toEqual(['before', 'after']);

        off();
        proxy.cut();
        await waitFor('a second reconnect', () => seenByAnother === 2);
        expect(reconnects).toBe(1); // that listener was removed
      } finally {
        for (const bus of opened.splice(0)) await bus.close();
        await proxy.close();
      }
    });

    it('a job running longer than two pull heartbeats finishes without a failed pull', async () => {
      const warnings: string[] = [];
      const logger = createLogger('warn', { write: (line) => warnings.push(line) });
      const bus = await open(freshPrefix('n'), { pullExpiresMs: 1_000, logger });
      const done: string[] = [];
      await bus.consume(
        'long',
        async (job) => {
          for (let beat = 0; beat < 6; beat++) {
            await new Promise((resolve) => setTimeout(resolve, 250));
            job.working();
          }
          done.push(`${job.id}#${job.attempt}`);
        },
        { ackWaitMs: 1_000 },
      );
      await bus.enqueue('long', {}, { id: 'j1' });
      await waitFor('the long job', () => done.length === 1);
      await bus.enqueue('long', {}, { id: 'j2' });
      await waitFor('the next job', () => done.length === 2);
      expect(done).toEqual(['j1#1', 'j2#1']);
      expect(warnings).toEqual([]);
    });

    it('refuses to start on a stream of the same name that cannot hold a work queue', async () => {
      const prefix = freshPrefix('n');
      prefixes.add(prefix);
      const names = busNames(prefix);
      await jsm.streams.add({ name: names.jobStream, subjects: [names.allJobs], retention: RetentionPolicy.Limits });
      await expect(open(prefix)).rejects.toThrow(new RegExp(`${names.jobStream}.*workqueue`));
    });
  });

  it('an unreachable broker fails the open with a message naming the URL, without the password', async () => {
    const closedPort = await freePort();
    await expect(openBus(`nats://127.0.0.1:${closedPort}`)).rejects.toThrow(`nats://127.0.0.1:${closedPort}`);
    const failure = await openBus(`nats://planline:s3cret@127.0.0.1:${closedPort}`).catch((error: Error) => error);
    expect(String(failure)).toMatch(/NATS/);
    expect(String(failure)).not.toContain('s3cret');
  });

  it('openBus without a URL is the embedded bus', async () => {
    const { bus, kind } = await openBus(undefined);
    expect(kind).toBe('memory');
    await bus.close();
  });
});

/** A loopback port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
