import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Secret } from '../credential.js';
import { isRecord } from '../../util/is-record.js';
import { bestMatch } from '../docker-config/match.js';
import { fileStamp } from '../watched-file.js';
import type { Found, Lookup, Target } from './lookup.js';

/** Where rkt kept its auth configs: vendor defaults first, local overrides last (they win). */
export const RKT_AUTH_DIRS = ['/usr/lib/rkt/auth.d', '/etc/rkt/auth.d'];

interface RktEntry {
  file: string;
  secret: Secret;
}

/**
 * Reads one rkt auth file: `{"rktKind":"dockerAuth","registries":[…],"credentials":{"user","password"}}`
 * or `{"rktKind":"auth","domains":[…],"type":"basic","credentials":{…}}`. Other kinds (oauth headers) are ignored.
 */
export function parseRktFile(content: string): { hosts: string[]; secret: Secret } | undefined {
  let document: unknown;
  try {
    document = JSON.parse(content);
  } catch {
    return undefined;
  }
  if (!isRecord(document) || !isRecord(document.credentials)) return undefined;
  const hostsField = document.rktKind === 'dockerAuth' ? document.registries : document.rktKind === 'auth' && document.type === 'basic' ? document.domains : undefined;
  if (!Array.isArray(hostsField)) return undefined;
  const { user, password } = document.credentials;
  if (typeof user !== 'string' || typeof password !== 'string') return undefined;
  const hosts = hostsField.filter((host): host is string => typeof host === 'string' && host !== '');
  return { hosts, secret: { kind: 'basic', username: user, password } };
}

/** Basic logins from legacy rkt `auth.d/*.json` files; a later directory overrides an earlier one. */
export class RktLookup implements Lookup {
  readonly name: string;
  private cached: { stamp: string; entries: Map<string, RktEntry> } | undefined;

  constructor(private readonly dirs: string[] = RKT_AUTH_DIRS) {
    this.name = `rkt auth ${dirs.join(', ')}`;
  }

  private async files(): Promise<{ stamp: string; files: string[] }> {
    const files: string[] = [];
    const stamps: string[] = [];
    for (const dir of this.dirs) {
      let names: string[];
      try {
        names = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        const file = path.join(dir, name);
        try {
          stamps.push(`${file}:${fileStamp(await stat(file))}`);
          files.push(file);
        } catch {
          // vanished between readdir and stat
        }
      }
    }
    return { stamp: stamps.join('|'), files };
  }

  private async entries(): Promise<Map<string, RktEntry>> {
    const { stamp, files } = await this.files();
    if (this.cached?.stamp === stamp) return this.cached.entries;
    const entries = new Map<string, RktEntry>();
    for (const file of files) {
      const parsed = parseRktFile(await readFile(file, 'utf8').catch(() => ''));
      for (const host of parsed?.hosts ?? []) entries.set(host, { file, secret: parsed?.secret ?? { kind: 'anonymous' } });
    }
    this.cached = { stamp, entries };
    return entries;
  }

  async find(target: Target): Promise<Found | undefined> {
    const match = bestMatch(await this.entries(), target.host, target.repository, () => true);
    if (!match) return undefined;
    const [host, entry] = match;
    const user = entry.secret.kind === 'basic' ? `, user "${entry.secret.username}"` : '';
    return { secret: entry.secret, source: `rkt auth ${entry.file} ("${host}"${user})`, origin: { kind: 'file', file: entry.file } };
  }
}
