import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { authProblems } from './auth-fields.js';
import { DOCKER_HUB } from '../core/docker-hub.js';
import { ConfigError } from '../core/errors.js';
import type { Config, RegistryConfig, S3Config } from './config.js';
import { resolveCluster } from './cluster-config.js';
import { applyProfile } from './registry-profiles.js';
import { interpolate, type UnsetReference } from './interpolate.js';
import { checkSchema, type RawAuth, type RawConfig, type RawRegistry, type RawS3 } from './schema.js';
import { parseDuration, parseSize } from './units.js';
import { patternProblem } from '../util/repository-pattern.js';
import type { AccessRule } from './config.js';
import { type LimitSettings, defaultBurst } from './limits.js';
import type { RawAccessRule } from './schema.js';

/** The embedded default config shipped in the package. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/pullgate.yaml', import.meta.url));


/** Picks the config file: `--config`, else `$PULLGATE_CONFIG`, else the embedded default. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? (env.PULLGATE_CONFIG || undefined) ?? DEFAULT_CONFIG_PATH;
}

/** Parses a `host:port` listen address. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`listen: "${text}" is not HOST:PORT`);
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

function resolveRegistry(key: string, raw: RawRegistry | null, baseDir: string): RegistryConfig {
  const entry = raw ?? {};
  // url and redirects: the config's own, else the key's built-in profile (registry-profiles.ts).
  const { url, redirects } = applyProfile(key, entry);
  const auth: RawAuth = entry.auth ?? { type: 'auto' };
  const relative = (file: string | undefined): string | undefined =>
    file === undefined ? undefined : path.resolve(baseDir, file);
  const resolveAuth = (given: RawAuth): RawAuth => ({
    ...given,
    ...(given.passwordFile !== undefined ? { passwordFile: relative(given.passwordFile) } : {}),
    ...(given.tokenFile !== undefined ? { tokenFile: relative(given.tokenFile) } : {}),
    ...(given.path !== undefined ? { path: relative(given.path) } : {}),
    ...(given.rktPaths !== undefined ? { rktPaths: given.rktPaths.map((dir) => path.resolve(baseDir, dir)) } : {}),
  });
  return {
    key,
    url,
    auth: resolveAuth(auth),
    realms: entry.realms ?? [],
    redirects,
    ca: relative(entry.ca),
    insecure: entry.insecure ?? false,
    repositories: entry.repositories,
    ...(entry.mirrors !== undefined && entry.mirrors.length > 0
      ? { mirrors: entry.mirrors.map((mirror) => ({ url: mirror.url.replace(/\/$/, ''), auth: resolveAuth(mirror.auth ?? { type: 'anonymous' }), tags: mirror.tags })) }
      : {}),
    ...(entry.rateLimit !== undefined && entry.rateLimit.reserve > 0 ? { reserve: entry.rateLimit.reserve } : {}),
  };
}

/** Turns a schema-valid document into the resolved Config, checking what the schema cannot. */
export function resolveConfig(raw: RawConfig, source: string, baseDir: string, unsetVariables: string[] = [], unsetReferences: UnsetReference[] = []): Config {
  const problems: string[] = [];
  const registries = new Map<string, RegistryConfig>();
  for (const [key, entry] of Object.entries(raw.registries)) {
    if (entry?.auth) problems.push(...authProblems(key, entry.auth));
    (entry?.mirrors ?? []).forEach((mirror, i) => {
      const where = `registries.${key}.mirrors[${i}]`;
      if (mirror.auth) problems.push(...authProblems(key, mirror.auth, `${where}.auth`));
      if (mirror.auth?.type === 'auto') problems.push(`${where}.auth.type: "auto" is for a registry's own url; name the source (docker-config, basic, token …)`);
      if (mirror.url.replace(/\/$/, '') === applyProfile(key, entry ?? {}).url) problems.push(`${where}.url: is the registry's own url`);
    });
    for (const list of ['allow', 'deny'] as const) {
      (entry?.repositories?.[list] ?? []).forEach((pattern, i) => {
        const problem = patternProblem(pattern);
        if (problem !== undefined) problems.push(`registries.${key}.repositories.${list}[${i}]: ${problem}`);
      });
    }
    registries.set(key, resolveRegistry(key, entry, baseDir));
  }
  const aliases = new Map<string, string>();
  for (const [alias, target] of Object.entries(raw.aliases)) {
    if (!registries.has(target)) problems.push(`aliases.${alias}: "${target}" is not a key of registries`);
    if (registries.has(alias)) problems.push(`aliases.${alias}: clashes with a registry key`);
    aliases.set(alias, target);
  }
  if (registries.size === 0) problems.push('registries: none configured; pullgate mirrors only the registries listed here (e.g. registries: { docker.io: {} })');
  // docker.io is the default only when it is configured: a ghcr.io-only mirror has no default.
  const defaultRegistry = raw.defaultRegistry ?? (registries.has(DOCKER_HUB) ? DOCKER_HUB : undefined);
  if (defaultRegistry !== undefined && !registries.has(defaultRegistry)) {
    problems.push(`defaultRegistry: "${defaultRegistry}" is not a key of registries`);
  }
  if (raw.clients.anonymous === false && raw.clients.htpasswd === undefined && raw.tls?.clientCA === undefined) {
    problems.push('clients: anonymous is false, so clients.htpasswd is required (or tls.clientCA, for client certificates)');
  }
  if (raw.metrics.auth === true && raw.clients.htpasswd === undefined) problems.push('metrics.auth: requires clients.htpasswd (the logins /metrics checks)');
  const access = raw.clients.access === undefined ? undefined : resolveAccessRules(raw.clients.access, raw.clients, problems);
  const parse = <T>(where: string, fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
      return fallback;
    }
  };
  const config: Config = {
    listen: parse('listen', () => parseListen(raw.listen), { host: '127.0.0.1', port: 5000 }),
    storage: {
      path: path.resolve(baseDir, raw.storage.path),
      maxSizeBytes: parse('storage.maxSize', () => parseSize(raw.storage.maxSize), 0),
      s3: raw.storage.s3 === undefined ? undefined : resolveS3(raw.storage.s3, parse),
    },
    cache: {
      tagTtlMs: parse('cache.tagTTL', () => parseDuration(raw.cache.tagTTL), 0),
      staleIfErrorMs: parse('cache.staleIfError', () => parseDuration(raw.cache.staleIfError), 0),
    },
    upstream: {
      timeoutMs: parse('upstream.timeout', () => parseDuration(raw.upstream.timeout), 0),
      deadlineMs: parse('upstream.deadline', () => parseDuration(raw.upstream.deadline), 0),
      maxRedirects: raw.upstream.maxRedirects,
    },
    defaultRegistry,
    registries,
    aliases,
    clients: {
      anonymous: raw.clients.anonymous,
      groups: new Map(Object.entries(raw.clients.groups)),
      access,
      htpasswd: raw.clients.htpasswd === undefined ? undefined : path.resolve(baseDir, raw.clients.htpasswd),
      loginThrottle: {
        failures: raw.clients.loginThrottle.failures,
        lockoutMs: parse('clients.loginThrottle.lockout', () => parseDuration(raw.clients.loginThrottle.lockout), 1_000),
        maxLockoutMs: parse('clients.loginThrottle.maxLockout', () => parseDuration(raw.clients.loginThrottle.maxLockout), 900_000),
      },
      limits: resolveLimits(raw.clients.limits),
      connections: {
        max: raw.clients.connections.max,
        perAddress: raw.clients.connections.perAddress,
        headersTimeoutMs: parse('clients.connections.headersTimeout', () => parseDuration(raw.clients.connections.headersTimeout), 20_000),
        keepAliveMs: parse('clients.connections.keepAlive', () => parseDuration(raw.clients.connections.keepAlive), 75_000),
        idleMs: parse('clients.connections.idle', () => parseDuration(raw.clients.connections.idle), 60_000),
      },
    },
    log: { level: raw.log.level, access: raw.log.access },
    metrics: {
      // Compatible default: a mirror that requires logins keeps /metrics behind them.
      auth: raw.metrics.auth ?? raw.clients.anonymous === false,
      listen: raw.metrics.listen === undefined ? undefined : parse('metrics.listen', () => parseListen(raw.metrics.listen ?? ''), undefined),
    },
    status: { allow: raw.status.allow },
    tls:
      raw.tls === undefined
        ? undefined
        : {
            cert: path.resolve(baseDir, raw.tls.cert),
            key: path.resolve(baseDir, raw.tls.key),
            clientCA: raw.tls.clientCA === undefined ? undefined : path.resolve(baseDir, raw.tls.clientCA),
          },
    cluster: raw.cluster === undefined ? undefined : resolveCluster(raw.cluster, parseListen, problems),
    source,
    unsetVariables,
    unsetReferences,
  };
  problems.push(...clientLimitProblems(config.clients));
  if (problems.length > 0) throw new ConfigError(formatProblems(source, problems));
  return config;
}

/** The words a subject may be besides user and group names. */
const SPECIAL_SUBJECTS = new Set(['anonymous', 'authenticated']);

/** `clients.access` checked (exactly one of allow/deny, usable patterns) and given origins; problems name the path. */
function resolveAccessRules(raw: RawAccessRule[], clients: RawConfig['clients'], problems: string[]): AccessRule[] {
  for (const group of Object.keys(clients.groups)) {
    if (SPECIAL_SUBJECTS.has(group)) problems.push(`clients.groups.${group}: "${group}" is a reserved subject and cannot name a group`);
  }
  return raw.map((rule, i) => {
    const where = `clients.access[${i}]`;
    if ((rule.allow === undefined) === (rule.deny === undefined)) problems.push(`${where}: needs exactly one of allow or deny`);
    const effect = rule.allow !== undefined ? 'allow' : 'deny';
    const patterns = rule.allow ?? rule.deny ?? [];
    patterns.forEach((pattern, j) => {
      const problem = patternProblem(pattern);
      if (problem !== undefined) problems.push(`${where}.${effect}[${j}]: ${problem}`);
    });
    if (clients.anonymous === false && rule.subjects.includes('anonymous') && effect === 'allow') {
      problems.push(`${where}.subjects: allows "anonymous", which contradicts clients.anonymous: false`);
    }
    return { subjects: rule.subjects, effect, patterns, origin: where };
  });
}

/** `storage.s3` with the prefix normalised (`cache` → `cache/`) and maxAge parsed. */
function resolveS3(raw: RawS3, parse: <T>(where: string, fn: () => T, fallback: T) => T): S3Config {
  const prefix = raw.prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return {
    endpoint: raw.endpoint?.replace(/\/+$/, ''),
    region: raw.region,
    bucket: raw.bucket,
    prefix: prefix === '' ? '' : `${prefix}/`,
    forcePathStyle: raw.forcePathStyle,
    redirect: raw.redirect,
    maxAgeMs: raw.maxAge === undefined ? undefined : parse('storage.s3.maxAge', () => parseDuration(raw.maxAge ?? '0'), undefined),
  };
}

/** `clients.limits`: undefined (off) unless `rate` or `concurrency` is set; `burst` defaults to two seconds of `rate`. */
function resolveLimits(raw: RawConfig['clients']['limits']): LimitSettings | undefined {
  if (raw === undefined || (raw.rate === undefined && raw.concurrency === undefined)) return undefined;
  return { rate: raw.rate, burst: raw.burst ?? (raw.rate === undefined ? 1 : defaultBurst(raw.rate)), concurrency: raw.concurrency, clients: raw.clients };
}

/** What the schema cannot say about the client limits: a zero that would mean "never". */
function clientLimitProblems(clients: Config['clients']): string[] {
  const problems: string[] = [];
  const { connections, loginThrottle } = clients;
  if (connections.headersTimeoutMs <= 0) problems.push('clients.connections.headersTimeout: must be more than 0');
  if (connections.keepAliveMs <= 0) problems.push('clients.connections.keepAlive: must be more than 0');
  if (loginThrottle.lockoutMs <= 0) problems.push('clients.loginThrottle.lockout: must be more than 0');
  if (loginThrottle.maxLockoutMs < loginThrottle.lockoutMs) problems.push('clients.loginThrottle.maxLockout: must not be less than lockout');
  return problems;
}

function formatProblems(source: string, problems: string[]): string {
  return [`invalid config ${source}:`, ...problems.map((problem) => `  config: ${problem}`)].join('\n');
}

/** Parses YAML text, interpolates `${VAR}`, validates and resolves it. Relative paths resolve against baseDir. */
export function loadConfigText(text: string, env: NodeJS.ProcessEnv, source: string, baseDir: string): Config {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`invalid config ${source}: not valid YAML: ${(err as Error).message}`);
  }
  const { value, unset, unsetAt } = interpolate(document, env);
  const checked = checkSchema(value);
  if (!checked.ok) throw new ConfigError(formatProblems(source, checked.problems));
  return resolveConfig(checked.config, source, baseDir, unset, unsetAt);
}

/**
 * Loads a config file. Relative storage and secret-file paths resolve against the current
 * directory, as an operator typing `pullgate serve` expects.
 */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv, cwd = process.cwd()): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return loadConfigText(text, env, file, cwd);
}
