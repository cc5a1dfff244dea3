import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';

/** A running CONNECT proxy on 127.0.0.1 and what it was asked for. */
export interface ConnectProxy {
  /** `http://127.0.0.1:PORT`, for HTTPS_PROXY / HTTP_PROXY. */
  url: string;
  /** `host:port` targets it tunnelled. */
  tunnelled: string[];
  /** Targets (CONNECT host:port, or the URL of a plain proxied request) it refused. */
  refused: string[];
  close(): Promise<void>;
}

/**
 * Starts an HTTP CONNECT proxy that tunnels only the targets in `routes` (`name:port` → `127.0.0.1:port`)
 * and refuses everything else with 403. It lets a daemon reach a loopback server by a name that does not
 * resolve — which dockerd then does not count as loopback, so it verifies the server's certificate.
 */
export async function startConnectProxy(routes: ReadonlyMap<string, string>): Promise<ConnectProxy> {
  const tunnelled: string[] = [];
  const refused: string[] = [];
  const open = new Set<Socket>();
  const server = createServer((req, res) => {
    refused.push(req.url ?? '');
    res.writeHead(403).end();
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    const to = routes.get(target);
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (to === undefined) {
      refused.push(target);
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    tunnelled.push(target);
    const at = to.lastIndexOf(':');
    const upstream = connect(Number(to.slice(at + 1)), to.slice(0, at), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    open.add(upstream);
    upstream.once('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('connect proxy: no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    tunnelled,
    refused,
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
