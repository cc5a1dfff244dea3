import type { Dispatcher } from 'undici';
import { buildApp, buildServices } from '../app/app.js';
import type { Config } from '../config/config.js';
import type { Deps } from '../core/deps.js';
import { drain, header, send } from '../upstream/http.js';

/** How long `pullgate warm` waits to learn whether a mirror answers at the configured address. */
const PROBE_TIMEOUT_MS = 2_000;

/** The URL a client uses for a listen address (a wildcard address is reached on loopback). */
export function listenUrl(listen: { host: string; port: number }): string {
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

/**
 * The URL of a registry answering `GET /v2/` at `url` (200, or 401 when it wants client
 * credentials, with the distribution API header), or undefined when nothing does.
 */
export async function findRunningMirror(url: string, dispatcher: Dispatcher): Promise<string | undefined> {
  try {
    const response = await send(`${url}/v2/`, { method: 'GET', headers: {}, dispatcher, timeoutMs: PROBE_TIMEOUT_MS });
    drain(response.body);
    const registry = header(response.headers, 'docker-distribution-api-version') !== undefined;
    return registry && (response.status === 200 || response.status === 401) ? url : undefined;
  } catch {
    return undefined;
  }
}

export interface LocalMirror {
  url: string;
  /** Stops it once every blob fill has been stored. */
  close(): Promise<void>;
}

/**
 * pullgate itself, in this process, on 127.0.0.1 and a free port, over the config's storage: what
 * `pullgate warm` fills when no mirror is running. It is this command's own, so it takes anonymous
 * clients whatever the config says.
 */
export async function startLocalMirror(config: Config, deps: Deps): Promise<LocalMirror> {
  // Its own clients only: anonymous, no access rules of the config (the registries' fetch filters still apply), plain HTTP.
  const local: Config = {
    ...config,
    clients: { ...config.clients, anonymous: true, access: [], htpasswd: undefined },
    listen: { host: '127.0.0.1', port: 0 },
    tls: undefined,
    metrics: { auth: false, listen: undefined },
  };
  const services = buildServices(local, deps);
  const app = buildApp(local, deps, services);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}
