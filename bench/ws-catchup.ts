// Catch-up: a session with 10,000 frames in its feed; a client that missed them all connects with
// since=0 and the figure is how fast it gets them (target ≥ 20,000 frames/s). Baseline, same run: a bare
// `ws` server sending as many frames of the same size to one socket.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { envNumber, fmt } from './support.js';
import { closeSockets, createSessions, openSockets, startPlanline, startRawServer, wsUrl } from './ws-support.js';

export interface WsCatchupResult {
  frames: number;
  framesPerSecond: number;
  rawFramesPerSecond: number;
}

const offsetOf = (text: string) => Number(/"offset":(\d+)/.exec(text)?.[1] ?? 0);

export async function benchWsCatchup(options: { frames?: number } = {}): Promise<WsCatchupResult> {
  const missed = options.frames ?? envNumber('BENCH_CATCHUP_FRAMES', 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-ws-'));
  try {
    const server = await startPlanline({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}`, FEED_HISTORY: String(missed * 2) });
    let framesPerSecond = 0;
    let head = 0;
    try {
      const [id] = await createSessions(server.url, 1);
      // The writer: switch_agent commands, pipelined a chunk at a time, each one frame.
      let seen = 0;
      const [writer] = await openSockets([wsUrl(server.url, `/api/v1/ws/${id}`)], {
        until: (text) => text.includes('"snapshot"'),
        onMessage: (_i, text) => void (seen = Math.max(seen, offsetOf(text))),
      });
      let debug = false;
      for (let sent = 0; sent < missed; ) {
        const chunk = Math.min(500, missed - sent);
        for (let k = 0; k < chunk; k++) writer!.send(JSON.stringify({ type: 'switch_agent', agent_type: (debug = !debug) ? 'debug' : 'coder' }));
        sent += chunk;
        while (seen < sent + 1) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      head = seen;
      await closeSockets([writer!]);

      let got = 0;
      let done = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const started = performance.now();
      const [reader] = await openSockets([wsUrl(server.url, `/api/v1/ws/${id}?since=0`)], {
        onMessage: (_i, text) => {
          got++;
          if (offsetOf(text) === head) done();
        },
      });
      await finished;
      framesPerSecond = got / ((performance.now() - started) / 1000);
      await closeSockets([reader!]);
    } finally {
      await server.stop();
    }

    const raw = await startRawServer();
    let rawFramesPerSecond = 0;
    try {
      let got = 0;
      let done = () => {};
      const finished = new Promise<void>((resolve) => (done = resolve));
      const [socket] = await openSockets([wsUrl(raw.url, '/')], { onMessage: () => void (++got === head && done()) });
      const started = performance.now();
      socket!.send(`B ${head} 380`);
      await finished;
      rawFramesPerSecond = head / ((performance.now() - started) / 1000);
      await closeSockets([socket!]);
    } finally {
      await raw.stop();
    }
    return { frames: head, framesPerSecond, rawFramesPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printWsCatchup(r: WsCatchupResult): void {
  console.log(`Catch-up (a client that missed ${fmt(r.frames)} frames connects with since=0, embedded)`);
  console.log(`  ${fmt(r.framesPerSecond)} frames/s`);
  console.log(`  target ≥ 20,000 frames/s: ${r.framesPerSecond >= 20_000 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: a bare ws server sending as many frames, ${fmt(r.rawFramesPerSecond)} frames/s`);
  console.log(`  ratio planline ÷ raw = ${fmt(r.framesPerSecond / r.rawFramesPerSecond, 3)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printWsCatchup(await benchWsCatchup());
}
