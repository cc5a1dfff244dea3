import { ConfigError } from '../../core/errors.js';
import type { Secret } from '../credential.js';
import { bestMatch } from '../docker-config/match.js';
import { describeSecret } from './describe.js';
import type { Found, Lookup, Target } from './lookup.js';

const PREFIX = 'PULLGATE_REGISTRY_';
const FIELDS = ['HOSTNAME', 'USERNAME', 'PASSWORD', 'IDENTITY_TOKEN', 'REGISTRY_TOKEN'] as const;
type Field = (typeof FIELDS)[number];
/** Longest field names first so `IDENTITY_TOKEN_X` is not read as field `IDENTITY` … */
const FIELD_PATTERN = new RegExp(`^${PREFIX}(${[...FIELDS].sort((a, b) => b.length - a.length).join('|')})(?:_([A-Za-z0-9_]+))?$`);

/** One `PULLGATE_REGISTRY_*_<SUFFIX>` group: the hosts it applies to and its secret. */
export interface EnvEntry {
  suffix: string;
  hostnames: string[];
  secret: Secret;
}

function variable(field: Field, suffix: string): string {
  return `${PREFIX}${field}${suffix === '' ? '' : `_${suffix}`}`;
}

/**
 * Reads the environment keychain: `PULLGATE_REGISTRY_{HOSTNAME,USERNAME,PASSWORD,IDENTITY_TOKEN,
 * REGISTRY_TOKEN}` with an optional `_<SUFFIX>` grouping them. HOSTNAME is a comma-separated list
 * of hosts, `host/path` prefixes or per-label globs (`*.gcr.io`). Any other `PULLGATE_REGISTRY_*`
 * variable, or an incomplete group, is a ConfigError naming the variable.
 */
export function parseEnvKeychain(env: NodeJS.ProcessEnv): EnvEntry[] {
  const groups = new Map<string, Partial<Record<Field, string>>>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(PREFIX) || value === undefined) continue;
    const match = FIELD_PATTERN.exec(name);
    if (!match) {
      throw new ConfigError(`environment: ${name} is not a known variable (expected ${PREFIX}{${FIELDS.join(',')}}[_<SUFFIX>])`);
    }
    const field = match[1] as Field;
    const suffix = match[2] ?? '';
    const group = groups.get(suffix) ?? {};
    group[field] = value;
    groups.set(suffix, group);
  }
  const entries: EnvEntry[] = [];
  for (const [suffix, group] of groups) {
    const hostnames = (group.HOSTNAME ?? '').split(',').map((host) => host.trim()).filter((host) => host !== '');
    if (hostnames.length === 0) throw new ConfigError(`environment: ${variable('HOSTNAME', suffix)} is required with ${Object.keys(group).map((f) => variable(f as Field, suffix)).join(', ')}`);
    let secret: Secret;
    if (group.REGISTRY_TOKEN !== undefined && group.REGISTRY_TOKEN !== '') {
      secret = { kind: 'bearer', token: group.REGISTRY_TOKEN };
    } else if (group.IDENTITY_TOKEN !== undefined && group.IDENTITY_TOKEN !== '') {
      secret = { kind: 'refresh', username: group.USERNAME || undefined, refreshToken: group.IDENTITY_TOKEN };
    } else if (group.USERNAME !== undefined && group.PASSWORD !== undefined) {
      secret = { kind: 'basic', username: group.USERNAME, password: group.PASSWORD };
    } else {
      throw new ConfigError(
        `environment: ${variable('HOSTNAME', suffix)} needs ${variable('USERNAME', suffix)} and ${variable('PASSWORD', suffix)}, ` +
          `or ${variable('IDENTITY_TOKEN', suffix)}, or ${variable('REGISTRY_TOKEN', suffix)}`,
      );
    }
    entries.push({ suffix, hostnames, secret });
  }
  return entries;
}

/** Credentials from `PULLGATE_REGISTRY_*` variables; the most specific (longest) matching hostname wins. */
export class EnvKeychainLookup implements Lookup {
  readonly name = 'environment PULLGATE_REGISTRY_*';
  private readonly keyed: [string, EnvEntry][];

  constructor(entries: EnvEntry[]) {
    this.keyed = entries.flatMap((entry) => entry.hostnames.map((host): [string, EnvEntry] => [host, entry]));
  }

  find(target: Target): Promise<Found | undefined> {
    const match = bestMatch(this.keyed, target.host, target.repository, () => true);
    if (!match) return Promise.resolve(undefined);
    const [host, entry] = match;
    const name = variable('HOSTNAME', entry.suffix);
    const found: Found = { secret: entry.secret, source: `environment ${name}="${host}" (${describeSecret(entry.secret)})`, origin: { kind: 'environment', variable: name } };
    return Promise.resolve(found);
  }
}
