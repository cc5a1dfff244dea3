import { isLoopbackHost, splitHostPort } from './mirror-address.js';
import type { Merged } from './client-file.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The daemon.json keys that send Docker to pullgate: `registry-mirrors` (Docker Hub only; left out
 * when `hub` is false, pullgate mirroring no Docker Hub), and `insecure-registries` when pullgate is
 * not on loopback, so plain-HTTP pulls by prefix (`docker pull HOST:PORT/ghcr.io/…`) work too
 * (Docker allows plain HTTP to 127.0.0.0/8 by itself).
 */
export function mirrorEntries(mirror: string, secure: boolean, hub = true): [key: string, value: string][] {
  const entries: [string, string][] = hub ? [['registry-mirrors', `${secure ? 'https' : 'http'}://${mirror}`]] : [];
  if (!secure && !isLoopbackHost(splitHostPort(mirror).host)) entries.push(['insecure-registries', mirror]);
  return entries;
}

/** docker's `daemon.json` for a fresh host: only the keys that point Docker at pullgate. */
export function daemonJson(mirror: string, secure = false, hub = true): string {
  const daemon: Record<string, string[]> = {};
  for (const [key, value] of mirrorEntries(mirror, secure, hub)) daemon[key] = [value];
  return `${JSON.stringify(daemon, null, 2)}\n`;
}

function sameMirror(a: string, b: string): boolean {
  const norm = (text: string): string => text.trim().replace(/\/+$/, '').toLowerCase();
  return norm(a) === norm(b);
}

/**
 * Merges pullgate's entries into an existing daemon.json: every other key and every other mirror
 * stays, pullgate's entry is appended once (Docker tries mirrors in order). Throws on a file that
 * is not a JSON object or whose lists are not lists of strings, so it is never overwritten blindly.
 */
export function mergeDaemonJson(existing: string, mirror: string, secure = false, hub = true): Merged {
  let parsed: unknown;
  try {
    parsed = JSON.parse(existing) as unknown;
  } catch (err) {
    throw new Error(`not valid JSON (${err instanceof Error ? err.message : String(err)}); fix or move it, then run again (the file was left untouched)`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error('not a JSON object; fix or move it, then run again (the file was left untouched)');
  }
  const daemon = parsed as Record<string, Json>;
  const notes: string[] = [];
  let changed = false;
  for (const [key, value] of mirrorEntries(mirror, secure, hub)) {
    const list = daemon[key] ?? [];
    if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) {
      throw new Error(`"${key}" is not a list of strings; fix it, then run again (the file was left untouched)`);
    }
    if (list.some((item) => sameMirror(item, value))) {
      notes.push(`${key}: ${value} already present`);
      continue;
    }
    daemon[key] = [...list, value];
    changed = true;
    notes.push(list.length === 0 ? `${key}: added ${value}` : `${key}: added ${value} after ${list.length} existing (Docker tries them in order)`);
  }
  return { content: `${JSON.stringify(daemon, null, 2)}\n`, changed, note: notes.join('; ') };
}
