import { Server as NetServer, type Socket } from 'node:net';
import type { Server } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long a keep-alive connection must stay silent during the drain before it is closed between requests. */
export const DRAIN_QUIET_MS = 1_000;

interface Connection {
  /** Responses under way on this connection. */
  responses: Set<ServerResponse>;
  /** Bytes read when the quiet timer was armed: if more arrived since, a request is on its way. */
  bytesAtArm: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Shuts a listener down without dropping a request sent on a keep-alive connection: it stops accepting
 * connections, lets responses under way finish (with `Connection: close` when their headers are not out yet),
 * and closes each open connection only after it has been silent for `quietMs` between requests — never while a
 * request may be arriving on it, which is what Node's own close (closeIdleConnections) does.
 */
export class ConnectionDrain {
  private readonly connections = new Map<Socket, Connection>();
  private draining = false;
  private drained: (() => void) | undefined;

  constructor(private readonly quietMs: number = DRAIN_QUIET_MS) {}

  /** True once drain() has begun. */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Tracks a new connection until it closes. */
  track(socket: Socket): void {
    const connection: Connection = { responses: new Set(), bytesAtArm: 0, timer: undefined };
    this.connections.set(socket, connection);
    socket.once('close', () => {
      clearTimeout(connection.timer);
      this.connections.delete(socket);
      if (this.draining && this.connections.size === 0) this.drained?.();
    });
    if (this.draining) this.armQuiet(socket, connection);
  }

  /** Notes a request being answered on its connection; the connection is busy until the response closes. */
  noteRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const connection = this.connections.get(socket);
    if (connection === undefined) return;
    clearTimeout(connection.timer);
    connection.timer = undefined;
    connection.responses.add(res);
    res.once('close', () => {
      connection.responses.delete(res);
      if (this.draining && connection.responses.size === 0 && !socket.destroyed) this.armQuiet(socket, connection);
    });
  }

  /**
   * Stops accepting connections and resolves once every open one has closed: answered its requests and then
   * either closed by the client (after `Connection: close`) or silent for `quietMs`.
   */
  drain(server: Server): Promise<void> {
    if (this.draining) return Promise.resolve();
    this.draining = true;
    const done = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    // net.Server's close stops accepting and leaves the open connections be. http.Server's close (Node ≥ 19)
    // also destroys every connection that has no response under way — including one whose next request is
    // in the socket's buffer, not parsed yet: the request that was lost on every keep-alive connection.
    if (server.listening) NetServer.prototype.close.call(server);
    for (const [socket, connection] of this.connections) {
      if (connection.responses.size === 0) {
        this.armQuiet(socket, connection);
        continue;
      }
      for (const res of connection.responses) {
        if (!res.headersSent) res.setHeader('connection', 'close');
      }
    }
    if (this.connections.size === 0) this.drained?.();
    return done;
  }

  private armQuiet(socket: Socket, connection: Connection): void {
    clearTimeout(connection.timer);
    connection.bytesAtArm = socket.bytesRead;
    connection.timer = setTimeout(() => {
      connection.timer = undefined;
      if (connection.responses.size > 0) return;
      // Bytes arrived since: a request is being parsed (its headers are incomplete); wait for it.
      if (socket.bytesRead !== connection.bytesAtArm) {
        this.armQuiet(socket, connection);
        return;
      }
      socket.destroy();
    }, this.quietMs);
  }
}
