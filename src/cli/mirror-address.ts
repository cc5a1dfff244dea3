import { isIP } from 'node:net';
import { parseListen } from '../config/load.js';

/** `host:port`, with brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Splits `host:port` or `[v6]:port`; the host comes back without brackets. */
export function splitHostPort(text: string): { host: string; port: number } {
  return parseListen(text);
}

/** True for 0.0.0.0 and :: — addresses a server binds to but a client cannot dial. */
export function isUnspecifiedHost(host: string): boolean {
  if (host === '' || host === '0.0.0.0') return true;
  return isIP(host) === 6 && host.split(':').every((group) => /^0*$/.test(group));
}

/** True for localhost, 127.0.0.0/8 and ::1 — where Docker allows plain HTTP without insecure-registries. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * The address clients reach pullgate at: `--mirror HOST:PORT` when given, else the config's
 * listen address. A listen address of 0.0.0.0 or :: (all interfaces, as in the container image)
 * names no host a client can dial, so `--mirror` is then required; the error says so.
 */
export function mirrorAddress(listen: { host: string; port: number }, flag: string | undefined): string {
  if (flag !== undefined) {
    const match = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d{1,5})$/.exec(flag.trim());
    const port = Number(match?.[3]);
    const host = match?.[1] ?? match?.[2];
    if (host === undefined || port < 1 || port > 65535) throw new Error(`--mirror: "${flag}" is not HOST:PORT (e.g. pullgate.lan:5000 or [fd00::1]:5000)`);
    if (isUnspecifiedHost(host)) throw new Error(`--mirror: ${flag} is an address to listen on, not one clients can reach; give this host's name or IP`);
    return joinHostPort(host, port);
  }
  if (isUnspecifiedHost(listen.host)) {
    throw new Error(
      `listen is ${joinHostPort(listen.host, listen.port)} (every interface), which clients cannot dial; ` +
        `say where clients reach pullgate with --mirror HOST:PORT, e.g. --mirror $(hostname -f):${listen.port} or --mirror 127.0.0.1:${listen.port}`,
    );
  }
  return joinHostPort(listen.host, listen.port);
}
