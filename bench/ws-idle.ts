// Idle sockets on one edge: 10,000 IDE sockets (10 on each of 1,000 sessions) connected and quiet; the
// server's resident memory per socket (target < 30 KB). Baseline, same run: a bare `ws` server holding
// as many idle sockets. RSS includes garbage not yet collected: the figures are approximate.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { envNumber, fmt } from './support.js';
import { closeSockets, createSessions, openSockets, rssBytes, sleep, startPlanline, startRawServer, wsUrl } from './ws-support.js';

export interface WsIdleResult {
  connections: number;
  bytesPerConnection: number;
  rawBytesPerConnection: number;
}

async function settledRss(pid: number): Promise<number> {
  await sleep(2_000);
  return rssBytes(pid);
}

export async function benchWsIdle(options: { connections?: number; sessions?: number } = {}): Promise<WsIdleResult> {
  const connections = options.connections ?? envNumber('BENCH_WS_CONNECTIONS', 10_000);
  const sessions = options.sessions ?? Math.max(1, Math.round(connections / 10));
  const dir = mkdtempSync(join(tmpdir(), 'planline-bench-ws-'));
  try {
    const server = await startPlanline({ EVENTSTORE_URL: `sqlite:${join(dir, 'planline.db')}` });
    const ids = await createSessions(server.url, sessions);
    const urls = Array.from({ length: connections }, (_, i) => wsUrl(server.url, `/api/v1/ws/${ids[i % sessions]}`));
    // A first round warms the server up (JIT, pools), so the measured round sees its steady state.
    await closeSockets(await openSockets(urls.slice(0, 500), { until: (text) => text.includes('"snapshot"') }));
    const before = await settledRss(server.pid);
    const sockets = await openSockets(urls, { until: (text) => text.includes('"snapshot"') });
    const after = await settledRss(server.pid);
    await closeSockets(sockets);
    await server.stop();

    const raw = await startRawServer();
    const rawUrls = Array.from({ length: connections }, () => wsUrl(raw.url, '/'));
    await closeSockets(await openSockets(rawUrls.slice(0, 500)));
    const rawBefore = await settledRss(raw.pid);
    const rawSockets = await openSockets(rawUrls);
    const rawAfter = await settledRss(raw.pid);
    await closeSockets(rawSockets);
    await raw.stop();
    return { connections, bytesPerConnection: (after - before) / connections, rawBytesPerConnection: (rawAfter - rawBefore) / connections };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printWsIdle(r: WsIdleResult): void {
  console.log(`Idle IDE sockets on one edge (${fmt(r.connections)} sockets, 10 per session, embedded)`);
  console.log(`  ${fmt(r.bytesPerConnection / 1024, 1)} KB of server RSS per socket`);
  console.log(`  target < 30 KB: ${r.bytesPerConnection < 30 * 1024 ? 'met' : 'MISSED'}`);
  console.log(`  baseline: a bare ws server, ${fmt(r.rawBytesPerConnection / 1024, 1)} KB per socket`);
  console.log(`  ratio planline ÷ raw = ${fmt(r.bytesPerConnection / r.rawBytesPerConnection, 2)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printWsIdle(await benchWsIdle());
}
