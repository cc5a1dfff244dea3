import type { Command } from 'commander';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseListen } from '../config/load.js';
import type { Config } from '../config/config.js';
import { isUnspecifiedHost, joinHostPort } from './mirror-address.js';

/** How long the check waits for the answer: within the Dockerfile HEALTHCHECK's --timeout of 5 s, with the start of node. */
const HEALTH_TIMEOUT_MS = 3_000;

/** Where the health check connects: the listen address (every interface → loopback) and its scheme. */
export interface HealthTarget {
  url: string;
  tls: boolean;
  /** The listener asks for client certificates (tls.clientCA): a handshake refused for want of one still proves it is up. */
  mutual: boolean;
}

/** The URL of /healthz for a config's listener: `0.0.0.0` and `::` are dialled on loopback, `https` with `tls:`. */
export function healthTarget(config: Pick<Config, 'listen' | 'tls'>): HealthTarget {
  const { host, port } = config.listen;
  const dial = isUnspecifiedHost(host) ? (host.includes(':') ? '::1' : '127.0.0.1') : host;
  const tls = config.tls !== undefined;
  return { url: `${tls ? 'https' : 'http'}://${joinHostPort(dial, port)}/healthz`, tls, mutual: config.tls?.clientCA !== undefined };
}

/** TLS alerts a server sends when it requires a client certificate and got none (TLS 1.3: 116; 1.2: handshake failure). */
function refusedForWantOfClientCert(err: Error): boolean {
  return /certificate required|alert number 116|sslv3 alert handshake failure/i.test(err.message);
}

/**
 * GETs /healthz once; resolves with whether the server answered 200 and a line saying what happened.
 * Over TLS the server's certificate is not verified (`rejectUnauthorized: false`): the check dials
 * this machine's own listener, whose certificate names the clients' host (often signed by a private
 * CA the container does not trust), sends nothing secret, and asks only "is it alive"; identity is
 * what clients verify, not this check.
 */
export function checkHealth(target: HealthTarget, timeoutMs = HEALTH_TIMEOUT_MS): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const onResponse = (res: IncomingMessage): void => {
      res.resume();
      resolve({ ok: res.statusCode === 200, detail: `${target.url}: ${res.statusCode ?? 0}` });
    };
    const options = { method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'pullgate-health' } };
    const req = target.tls ? httpsRequest(target.url, { ...options, rejectUnauthorized: false }, onResponse) : httpRequest(target.url, options, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      if (target.mutual && refusedForWantOfClientCert(err)) {
        resolve({ ok: true, detail: `${target.url}: the listener is up (it refused the handshake for want of a client certificate, tls.clientCA)` });
        return;
      }
      resolve({ ok: false, detail: `${target.url}: ${err.message}` });
    });
    req.end();
  });
}

/**
 * `pullgate health [--config FILE] [--listen HOST:PORT]`: GETs /healthz on the address and scheme the
 * config's `listen` and `tls` name (the container's HEALTHCHECK); exit 0 when it answers 200, else 1.
 */
export function registerHealthCommand(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('health')
    .description("check that the server of this config answers /healthz (exit 0), for a container HEALTHCHECK; 1 when it does not")
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .option('--listen <host:port>', "the address serve was given with --listen, when it overrides the config's")
    .action(async (options: { config?: string; listen?: string }) => {
      let target: HealthTarget;
      try {
        const config = load(options.config);
        target = healthTarget({ listen: options.listen === undefined ? config.listen : parseListen(options.listen), tls: config.tls });
      } catch (err) {
        process.stderr.write(`pullgate: health: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(2);
      }
      const { ok, detail } = await checkHealth(target);
      (ok ? process.stdout : process.stderr).write(`pullgate: health: ${ok ? 'ok' : 'failing'}: ${detail}\n`);
      process.exit(ok ? 0 : 1);
    });
}
