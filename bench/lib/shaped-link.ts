// A shaped TCP link for the bench: a relay in front of the upstream registry that behaves like one WAN
// link. Every byte is delayed by half the round trip in each direction, and the bytes flowing back to
// the clients share one rate limit, served in arrival order across connections. The direct pull,
// pullgate and distribution's proxy all reach the upstream through the same kind of link, so a cold
// pull measures what a mirror adds when the upstream is across the internet, not on loopback.
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';

export interface LinkShape {
  /** Capacity from the upstream to its clients, in megabits per second (10^6 bits). */
  mbitPerSecond: number;
  /** Round-trip time added to every exchange, in milliseconds. */
  rttMs: number;
}

export interface ShapedLink {
  /** host:port of the relay (what a client puts in an image reference). */
  host: string;
  url: string;
  shape: LinkShape;
  close(): Promise<void>;
}

/** The rate-limited direction's state, shared by every connection: when the link is next free. */
interface Bottleneck {
  bytesPerMs: number;
  freeAt: number;
}

/**
 * Parses BENCH_LINKS-style text: links separated by ";", each "MBIT,RTT_MS" (for example
 * "250,40;1000,10"); the fallback when unset. Throws on anything else, so a typo never silently
 * measures a different link.
 */
export function parseLinkShapes(text: string | undefined, fallback: readonly LinkShape[]): LinkShape[] {
  if (text === undefined || text.trim() === '') return [...fallback];
  return text.split(';').map((link) => {
    const [mbit, rtt, extra] = link.split(',').map((part) => Number(part.trim()));
    if (mbit === undefined || rtt === undefined || extra !== undefined || !(mbit > 0) || !(rtt >= 0)) {
      throw new Error(`BENCH_LINKS must be "MBIT,RTT_MS[;MBIT,RTT_MS...]" with MBIT > 0 and RTT_MS >= 0, not ${JSON.stringify(text)}`);
    }
    return { mbitPerSecond: mbit, rttMs: rtt };
  });
}

/**
 * Relays `src` to `dst`, each chunk arriving one-way delay after it left (and, with a bottleneck,
 * after the link had time to carry it). Chunks and the final end are delivered strictly in order by
 * one timer chain per direction. Reading pauses while more than `window` bytes are in flight, so
 * TCP backpressure reaches the sender as it would on a real link.
 */
function relay(src: Socket, dst: Socket, oneWayMs: number, window: number, bottleneck: Bottleneck | undefined): void {
  const queue: { arrival: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let lastArrival = 0;
  const deliver = (): void => {
    timer = undefined;
    const now = performance.now();
    for (let head = queue[0]; head !== undefined && head.arrival <= now; head = queue[0]) {
      queue.shift();
      if (head.chunk === null) {
        dst.end();
        return;
      }
      if (!dst.destroyed) dst.write(head.chunk);
      inFlight -= head.chunk.length;
    }
    if (inFlight <= window / 2 && src.isPaused()) src.resume();
    schedule();
  };
  const schedule = (): void => {
    const head = queue[0];
    if (timer === undefined && head !== undefined) timer = setTimeout(deliver, Math.max(0, head.arrival - performance.now()));
  };
  const enqueue = (chunk: Buffer | null, arrival: number): void => {
    lastArrival = Math.max(arrival, lastArrival);
    queue.push({ arrival: lastArrival, chunk });
    schedule();
  };
  src.on('data', (chunk: Buffer) => {
    const now = performance.now();
    let arrival = now + oneWayMs;
    if (bottleneck !== undefined) {
      bottleneck.freeAt = Math.max(bottleneck.freeAt, now) + chunk.length / bottleneck.bytesPerMs;
      arrival = bottleneck.freeAt + oneWayMs;
    }
    inFlight += chunk.length;
    if (inFlight > window) src.pause();
    enqueue(chunk, arrival);
  });
  src.once('end', () => enqueue(null, performance.now()));
  dst.once('close', () => {
    if (timer !== undefined) clearTimeout(timer);
    queue.length = 0;
  });
}

/** Starts a relay on 127.0.0.1 (a free port) in front of `target` ("host:port"). */
export async function startShapedLink(target: string, shape: LinkShape): Promise<ShapedLink> {
  const colon = target.lastIndexOf(':');
  const targetHost = target.slice(0, colon);
  const targetPort = Number(target.slice(colon + 1));
  const bytesPerMs = (shape.mbitPerSecond * 1e6) / 8 / 1000;
  const oneWayMs = shape.rttMs / 2;
  // Enough bytes in flight to fill the link for two round trips (its bandwidth-delay product), so the
  // relay's window never becomes the limit a real TCP window would not be.
  const window = Math.max(1024 * 1024, Math.ceil(bytesPerMs * Math.max(shape.rttMs, 1) * 2));
  const down: Bottleneck = { bytesPerMs, freeAt: 0 };
  const sockets = new Set<Socket>();
  // Half-open sockets: each direction ends on its own, after its delayed bytes, as on a real link.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ port: targetPort, host: targetHost, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.once('error', () => undefined);
      // A reset or error on either side resets the other; a clean end travels through relay().
      socket.once('close', (hadError) => {
        sockets.delete(socket);
        if (hadError) {
          client.destroy();
          upstream.destroy();
        }
      });
    }
    relay(client, upstream, oneWayMs, window, undefined);
    relay(upstream, client, oneWayMs, window, down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `http://${host}`,
    shape,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
