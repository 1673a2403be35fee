// The raw baseline for the socket benchmarks: a bare `ws` server in its own process, doing the least a
// socket server can do. Text frames it understands:
//   E…            echo the frame back (command → delivery baseline)
//   F <n> <bytes> send n frames of about that size to every connected socket (fan-out baseline)
//   B <n> <bytes> send n frames of about that size to this socket (catch-up baseline)
// It prints its port on stdout once listening.
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

const server = createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false });
const sockets = new Set<WebSocket>();
const frame = (i: number, bytes: number) => JSON.stringify({ type: 'status', offset: i, content: 'x'.repeat(Math.max(0, bytes - 40)) });

wss.on('connection', (ws) => {
  sockets.add(ws);
  ws.on('close', () => sockets.delete(ws));
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('E')) return ws.send(text);
    const [op, n, bytes] = text.split(' ');
    if (op === 'F') {
      for (let i = 1; i <= Number(n); i++) {
        const payload = frame(i, Number(bytes));
        for (const socket of sockets) socket.send(payload);
      }
    } else if (op === 'B') {
      for (let i = 1; i <= Number(n); i++) ws.send(frame(i, Number(bytes)));
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
