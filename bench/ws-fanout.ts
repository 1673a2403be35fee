// Fan-out: 5,000 IDE sockets, 250 on each of 20 sessions; on each session one socket sends switch_agent
// commands back to back (the next once its frame is back); every frame goes to the session's 250
// sockets. The figure is frames delivered per second across all sockets (target ≥ 50,000/s). Baseline,
// same run: a bare `ws` server broadcasting frames of the same size to as many sockets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { envNumber, fmt } from './support.js';
import { closeSockets, createSessions, openSockets, sleep, startPlanline, startRawServer, wsUrl } from './ws-support.js';

export interface WsFanoutResult {
  sockets: number;
  perSession: number;
  framesPerSecond: number;
  commandsPerSecond: number;
  rawFramesPerSecond: number;
}

export async function benchWsFanout(options: { sessions?: number; perSession?: number; seconds?: number } = {}): Promise<WsFanoutResult> {
  const sessions = options.sessions ?? 20;
  const perSession = options.perSession ?? 250;
  const seconds = options.seconds ?? envNumber('BENCH_SECONDS', 10);
  const total = sessions * perSession;
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-ws-'));
  try {
    const server = await startPlanline({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}` });
    let framesPerSecond = 0;
    let commandsPerSecond = 0;
    try {
      const ids = await createSessions(server.url, sessions);
      let received = 0;
      const waiting = new Map<number, () => void>();
      const sockets = await openSockets(
        Array.from({ length: total }, (_, i) => wsUrl(server.url, `/api/v1/ws/${ids[i % sessions]}`)),
        {
          until: (text) => text.includes('"snapshot"'),
          onMessage(i) {
            received++;
            if (i < sessions) waiting.get(i)?.();
          },
        },
      );
      let commands = 0;
      // Each command must change the agent (switching to the current one is a no-op, with no frame).
      const debug = new Array<boolean>(sessions).fill(false);
      const loop = async (session: number, end: number) => {
        while (performance.now() < end) {
          const back = new Promise<void>((resolve) => waiting.set(session, resolve));
          sockets[session]!.send(JSON.stringify({ type: 'switch_agent', agent_type: (debug[session] = !debug[session]) ? 'debug' : 'coder' }));
          await back;
          commands++;
        }
      };
      await Promise.all(Array.from({ length: sessions }, (_, s) => loop(s, performance.now() + 2_000))); // warm-up
      await sleep(500);
      received = 0;
      commands = 0;
      const started = performance.now();
      await Promise.all(Array.from({ length: sessions }, (_, s) => loop(s, started + seconds * 1000)));
      const elapsed = (performance.now() - started) / 1000;
      framesPerSecond = received / elapsed;
      commandsPerSecond = commands / elapsed;
      await closeSockets(sockets);
    } finally {
      await server.stop();
    }

    const raw = await startRawServer();
    let rawFramesPerSecond = 0;
    try {
      let received = 0;
      const sockets = await openSockets(Array.from({ length: total }, () => wsUrl(raw.url, '/')), { onMessage: () => void received++ });
      const batch = 100;
      const started = performance.now();
      while (performance.now() - started < seconds * 1000) {
        const target = received + batch * total;
        sockets[0]!.send(`F ${batch} 380`);
        while (received < target) await sleep(1);
      }
      rawFramesPerSecond = received / ((performance.now() - started) / 1000);
      await closeSockets(sockets);
    } finally {
      await raw.stop();
    }
    return { sockets: total, perSession, framesPerSecond, commandsPerSecond, rawFramesPerSecond };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printWsFanout(r: WsFanoutResult): void {
  console.log(`Fan-out (${fmt(r.sockets)} sockets, ${fmt(r.perSession)} per session, embedded)`);
  console.log(`  ${fmt(r.framesPerSecond)} frames/s delivered (${fmt(r.commandsPerSecond)} commands/s)`);
  console.log(`  target ≥ 50,000 frames/s: ${r.framesPerSecond >= 50_000 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: a bare ws server broadcasting, ${fmt(r.rawFramesPerSecond)} frames/s`);
  console.log(`  ratio planline ÷ raw = ${fmt(r.framesPerSecond / r.rawFramesPerSecond, 3)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printWsFanout(await benchWsFanout());
}
