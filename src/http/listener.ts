import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/deps.js';
import { AddressConnections } from '../access/client-limits.js';
import type { Metrics } from '../core/metrics.js';
import { PerKeyInterval } from '../util/per-key-interval.js';
import { errorBody, type ErrorCode } from './error-map.js';
import type { ConnectionDrain } from './connection-drain.js';

/** A request's whole body must arrive within this (or headersTimeout, if longer); pull requests have none. */
const REQUEST_TIMEOUT_FLOOR_MS = 60_000;
/** How often Node checks the header and request timeouts; a silent connection lives at most headersTimeout + this. */
const TIMEOUT_CHECK_MS = 1_000;
/** `/`: a request target in origin-form starts with it. */
const SLASH = 0x2f;
/** At most one "connection refused" warning per this interval, however many are refused (per address for perAddress). */
const DROP_WARNING_INTERVAL_MS = 10_000;
/** Addresses whose last "connection refused" warning is remembered, at most. */
const DROP_WARNING_ADDRESSES = 10_000;

export interface ListenerOptions {
  connections: Config['clients']['connections'];
  logger: FastifyBaseLogger;
  clock: Clock;
  /** The manifest hot path; true when it answered the request. */
  fast: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** False once the app is closing: new requests get 503 and `Connection: close`. */
  open: () => boolean;
  /** HTTPS: the certificate, key and (mutual TLS) client CA as loaded by TlsFiles; undefined = plain HTTP. */
  tls?: SecureContextOptions | undefined;
  /** Counts connections refused (pullgate_connections_refused_total); absent in tests of the listener alone. */
  metrics?: Metrics | undefined;
  /** Tracks connections so that shutting down closes them between requests; absent in tests of the listener alone. */
  drain?: ConnectionDrain | undefined;
}

/** A complete HTTP/1.1 response with an OCI JSON error body that closes the connection, for raw sockets. */
export function rawErrorResponse(status: number, code: ErrorCode, message: string): string {
  const body = errorBody({ code, message, detail: undefined });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, method: string | undefined): void {
  const body = errorBody({ code, message, detail: undefined });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(method === 'HEAD' ? undefined : body);
}

/** `http://authority` or `https://authority` at the start of an absolute-form request target (RFC 9112 §3.2.2). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)/i;

/**
 * The origin-form (`/v2/…?query`) of a request target: unchanged when it is one already; for the
 * absolute-form (`http://mirror/v2/`) its path and query, so every later step sees one form; undefined
 * for anything else (`*`, a bare word, an authority with user info), which is answered 400.
 */
export function originForm(target: string): { path: string; authority: string | undefined } | undefined {
  if (target.startsWith('/')) return { path: target, authority: undefined };
  const absolute = ABSOLUTE_FORM.exec(target);
  const authority = absolute?.[1];
  if (absolute === null || authority === undefined || authority === '' || authority.includes('@')) return undefined;
  const rest = target.slice(absolute[0].length);
  if (rest.startsWith('#')) return undefined;
  return { path: rest.startsWith('/') ? rest : `/${rest}`, authority };
}

/** What Node's HTTP server knows of a socket's response in flight (not in its typings). */
interface HttpSocket extends Duplex {
  _httpMessage?: { headersSent?: boolean } | null;
}

/**
 * Fastify's `clientErrorHandler`: a request Node could not parse (bad request line, invalid method,
 * headers over 16 KiB, headers not complete within headersTimeout) gets a minimal HTTP/1.1
 * 400/431/408 with an OCI JSON body, and the connection is closed.
 */
export function clientErrorHandler(logger: FastifyBaseLogger): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, message]: [number, ErrorCode, string] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'UNAVAILABLE', 'the request did not arrive in time (clients.connections.headersTimeout); connection closed']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'SIZE_INVALID', 'the request line and headers are larger than pullgate accepts (16 KiB)']
          : [400, 'UNSUPPORTED', 'malformed HTTP request; pullgate speaks HTTP/1.1 with the OCI distribution pull API'];
    logger.debug({ code: err.code, status }, 'client error');
    // As Node does: never write into the middle of a response already under way on this socket.
    const inFlight = (socket as HttpSocket)._httpMessage;
    if (socket.writable && (inFlight === undefined || inFlight === null || inFlight.headersSent !== true)) {
      socket.end(rawErrorResponse(status, code, message), () => socket.destroy());
    } else {
      socket.destroy();
    }
  };
}

/**
 * The node:http (or, with `tls`, node:https) server behind Fastify: the manifest hot path in front of Fastify's handler,
 * header/request/keep-alive/idle timeouts and connection limits (in all, and per address) from `clients.connections`, and
 * OCI JSON for the answers Node would otherwise write itself (CONNECT, `Expect`, shutting down).
 */
export function createListener(handler: (req: IncomingMessage, res: ServerResponse) => void, options: ListenerOptions): Server {
  const { connections, logger, clock, fast, open, tls, metrics, drain } = options;
  const httpOptions: ServerOptions = {
    headersTimeout: connections.headersTimeoutMs,
    requestTimeout: Math.max(connections.headersTimeoutMs, REQUEST_TIMEOUT_FLOOR_MS),
    keepAliveTimeout: connections.keepAliveMs,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, connections.headersTimeoutMs),
    // A missing Host header is answered like any other request rather than with Node's empty 400.
    requireHostHeader: false,
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    drain?.noteRequest(req, res);
    if (!open()) {
      sendError(res, 503, 'UNAVAILABLE', 'pullgate is shutting down; retry shortly', req.method);
      return;
    }
    // The absolute-form is rewritten here, before the hot path and Fastify, so both see the path alone
    // (and the authority replaces Host, as RFC 9112 asks of a server).
    const url = req.url ?? '';
    if (url.charCodeAt(0) !== SLASH) {
      const origin = originForm(url);
      if (origin === undefined) {
        sendError(res, 400, 'UNSUPPORTED', 'the request target must be a path (/v2/…) or an absolute http(s) URL', req.method);
        return;
      }
      req.url = origin.path;
      if (origin.authority !== undefined) req.headers.host = origin.authority;
    }
    if (!fast(req, res)) handler(req, res);
  };
  // With a client CA, only clients presenting a certificate it signed complete the handshake (mutual TLS).
  const mutual = tls?.ca !== undefined;
  const server: Server =
    tls === undefined
      ? createServer(httpOptions, listener)
      : createHttpsServer({ ...httpOptions, ...tls, requestCert: mutual, rejectUnauthorized: mutual }, listener);
  server.keepAliveTimeout = connections.keepAliveMs;
  // Inactivity, not duration: a streaming blob is never cut, a response the client stopped reading is.
  server.setTimeout(connections.idleMs);
  server.maxConnections = connections.max;
  let lastDropWarning = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    metrics?.connectionsRefused.inc({ limit: 'total' });
    const now = clock.now();
    if (now - lastDropWarning < DROP_WARNING_INTERVAL_MS) return;
    lastDropWarning = now;
    logger.warn({ max: connections.max }, 'connection refused: clients.connections.max open connections reached');
  });
  // Per address, so one host cannot hold every slot of `max` (raw TCP, before TLS or any request).
  const perAddress = new AddressConnections(connections.perAddress);
  const warned = new PerKeyInterval<string>(DROP_WARNING_ADDRESSES, DROP_WARNING_INTERVAL_MS);
  server.on('connection', (socket: Socket) => {
    const admission = perAddress.admit(socket.remoteAddress ?? 'unknown');
    if (admission.ok) {
      socket.once('close', admission.release);
      // With TLS, requests arrive on the TLSSocket over this one: that is tracked once its handshake is done.
      if (tls === undefined) drain?.track(socket);
      return;
    }
    socket.destroy();
    metrics?.connectionsRefused.inc({ limit: 'address' });
    if (warned.due(admission.key, clock.now())) {
      logger.warn({ address: admission.key, perAddress: connections.perAddress }, 'connection refused: clients.connections.perAddress open connections from this address');
    }
  });
  if (tls !== undefined && drain !== undefined) server.on('secureConnection', (socket: Socket) => drain.track(socket));
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.end(rawErrorResponse(405, 'UNSUPPORTED', 'CONNECT is not supported: pullgate is a registry mirror, not a proxy'), () => socket.destroy());
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    sendError(res, 417, 'UNSUPPORTED', 'pullgate supports only "Expect: 100-continue"', req.method);
  });
  return server;
}
