// A loopback TCP proxy whose connections can be cut, as a network failure would, and which can hold
// (refuse every new connection) until released, as a broker that is down for a while would. Tests put
// it between a client and a shared server, so the shared server itself is never restarted.
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** The target's URL with the proxy's address (same scheme). */
  url: string;
  /** Destroy every open connection. */
  cut(): void;
  /** Refuse new connections (each is closed at once) until release(). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export async function tcpProxy(target: URL): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let holding = false;
  const server: Server = createServer((client) => {
    if (holding) {
      client.destroy();
      return;
    }
    const upstream = connectTcp(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    cut,
    hold: () => void (holding = true),
    release: () => void (holding = false),
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
