import { statSync } from 'node:fs';
import path from 'node:path';
import { WatchedAuthFile } from '../docker-config/file.js';
import { bestMatch, canonicalHost, helperServerUrl, normaliseKey } from '../docker-config/match.js';
import { parseAuthFile, type AuthFile } from '../docker-config/parse.js';
import type { CredentialOrigin, Secret } from '../credential.js';
import type { CredentialHelpers } from './credential-helper.js';
import { describeSecret } from './describe.js';
import type { Found, Lookup, Target } from './lookup.js';

/** File names looked for when `auth.path` is a directory (a mounted Kubernetes Secret, a DOCKER_CONFIG dir). */
const FILES_IN_DIRECTORY = ['.dockerconfigjson', '.dockercfg', 'config.json', 'auth.json'];

function labelFor(file: string): string {
  const base = path.basename(file);
  if (base === '.dockerconfigjson') return 'Kubernetes secret';
  if (base === '.dockercfg') return 'legacy dockercfg';
  if (base === 'auth.json') return 'containers auth file';
  if (/\.(?:tar\.gz|tgz)$/.test(base)) return 'Mesos docker archive';
  return 'docker config';
}

/**
 * Finds a login in one parsed file: `credHelpers[host]` › `credsStore` › the best `auths` entry
 * (namespaced keys longest first, placeholders skipped). A helper's "not found" or failure falls
 * through to the `auths` entry, and its failure is noted.
 */
async function findInFile(file: AuthFile, where: string, origin: CredentialOrigin, target: Target, helpers: CredentialHelpers, notes: string[]): Promise<Found | undefined> {
  const host = canonicalHost(target.host);
  const helper = [...file.credHelpers].find(([key]) => normaliseKey(key).host === host && normaliseKey(key).path === '')?.[1];
  for (const [name, why] of [
    [helper, `credHelpers in ${where}`],
    [helper === undefined ? file.credsStore : undefined, `credsStore in ${where}`],
  ] as const) {
    if (name === undefined) continue;
    const answer = await helpers.get(name, helperServerUrl(target.host));
    if (answer.kind === 'found') {
      return { secret: answer.secret, source: `credential helper docker-credential-${name} (${why}, ${describeSecret(answer.secret)})`, origin: { kind: 'credential-helper', helper: name } };
    }
    if (answer.kind === 'failed') notes.push(answer.reason);
  }
  const entry = bestMatch<Secret | undefined>(file.auths, host, target.repository, (secret) => secret !== undefined);
  if (entry?.[1] === undefined) return undefined;
  return { secret: entry[1], source: `${where} (auths "${entry[0]}", ${describeSecret(entry[1])})`, origin };
}

/** Logins in one credentials file on disk (config.json, auth.json, .dockerconfigjson, .dockercfg). */
export class AuthFileLookup implements Lookup {
  readonly name: string;
  private readonly file: WatchedAuthFile;

  constructor(
    filePath: string,
    private readonly helpers: CredentialHelpers,
    /** An explicitly configured file: its absence is worth a note. */
    private readonly explicit = false,
  ) {
    this.file = new WatchedAuthFile(filePath);
    this.name = `${labelFor(filePath)} ${filePath}`;
  }

  async find(target: Target, notes: string[]): Promise<Found | undefined> {
    const file = await this.file.read();
    if (file === undefined) {
      if (this.explicit) notes.push(`${this.file.path} does not exist`);
      return undefined;
    }
    return findInFile(file, this.name, { kind: 'file', file: this.file.path }, target, this.helpers, notes);
  }

  invalidate(): void {
    this.helpers.invalidate();
  }
}

/** Logins in `DOCKER_AUTH_CONFIG` (config.json JSON in an environment variable, as CI systems set it). */
export class EnvAuthConfigLookup implements Lookup {
  readonly name = 'DOCKER_AUTH_CONFIG';
  private readonly file: AuthFile | undefined;
  private readonly problem: string | undefined;

  constructor(
    value: string | undefined,
    private readonly helpers: CredentialHelpers,
  ) {
    try {
      this.file = value === undefined || value.trim() === '' ? undefined : parseAuthFile(value, 'DOCKER_AUTH_CONFIG');
    } catch (err) {
      this.problem = err instanceof Error ? err.message : String(err);
    }
  }

  find(target: Target, notes: string[]): Promise<Found | undefined> {
    if (this.problem !== undefined) notes.push(this.problem);
    if (this.file === undefined) return Promise.resolve(undefined);
    return findInFile(this.file, this.name, { kind: 'environment', variable: 'DOCKER_AUTH_CONFIG' }, target, this.helpers, notes);
  }
}

/**
 * The credential files pullgate reads by default, in order: docker's config.json (`$DOCKER_CONFIG`
 * or `~/.docker`), containers auth.json (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers`,
 * `${XDG_CONFIG_HOME:-~/.config}/containers`), then the legacy `~/.dockercfg`.
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME === undefined || env.HOME === '' ? undefined : env.HOME;
  const files: (string | undefined)[] = [
    env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, 'config.json') : home && path.join(home, '.docker', 'config.json'),
    env.REGISTRY_AUTH_FILE || undefined,
    env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json') : undefined,
    env.XDG_CONFIG_HOME ? path.join(env.XDG_CONFIG_HOME, 'containers', 'auth.json') : home && path.join(home, '.config', 'containers', 'auth.json'),
    home && path.join(home, '.dockercfg'),
  ];
  return [...new Set(files.filter((file): file is string => file !== undefined))];
}

/** Files for an explicit `auth.path`: the file itself, or the known names inside a directory. */
export function explicitAuthFiles(configured: string): string[] {
  try {
    if (statSync(configured).isDirectory()) return FILES_IN_DIRECTORY.map((name) => path.join(configured, name));
  } catch {
    // A missing path is reported at lookup time, so a Secret mounted later is still picked up.
  }
  return [configured];
}

/** The lookups of the docker-config source: an explicit path alone, else DOCKER_AUTH_CONFIG and the default files. */
export function dockerConfigLookups(configured: string | undefined, env: NodeJS.ProcessEnv, helpers: CredentialHelpers): Lookup[] {
  if (configured !== undefined) {
    const files = explicitAuthFiles(configured);
    return files.map((file) => new AuthFileLookup(file, helpers, files.length === 1));
  }
  return [new EnvAuthConfigLookup(env.DOCKER_AUTH_CONFIG, helpers), ...defaultAuthFiles(env).map((file) => new AuthFileLookup(file, helpers))];
}
