import { stringify } from 'yaml';
import type { Config, S3Config } from './config.js';
import { formatDuration, formatSize } from './units.js';

const SECRET_FIELDS = new Set(['password', 'token', 'identityToken']);

/** Replaces a secret with a marker that says whether it is set, never what it is. */
export function maskSecret(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value === '' ? '(empty)' : '***';
}

/** `storage.s3` as written (it holds no secret: the keys come from the AWS SDK's default chain). */
function renderS3(s3: S3Config): Record<string, unknown> {
  return {
    ...(s3.endpoint === undefined ? {} : { endpoint: s3.endpoint }),
    region: s3.region,
    bucket: s3.bucket,
    prefix: s3.prefix,
    forcePathStyle: s3.forcePathStyle,
    redirect: s3.redirect,
    ...(s3.maxAgeMs === undefined ? {} : { maxAge: formatDuration(s3.maxAgeMs) }),
  };
}

/** An `auth` block with its secret fields masked. */
function maskAuth(given: object): Record<string, unknown> {
  const auth: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(given)) {
    auth[field] = SECRET_FIELDS.has(field) && typeof value === 'string' ? maskSecret(value) : value;
  }
  return auth;
}

/** Renders the resolved config as YAML for `pullgate config check`, with every secret masked. */
export function renderConfig(config: Config): string {
  const registries: Record<string, unknown> = {};
  for (const [key, registry] of config.registries) {
    registries[key] = {
      url: registry.url,
      auth: maskAuth(registry.auth),
      ...(registry.realms.length > 0 ? { realms: registry.realms } : {}),
      ...(registry.redirects.length > 0 ? { redirects: registry.redirects } : {}),
      ...(registry.ca !== undefined ? { ca: registry.ca } : {}),
      ...(registry.insecure ? { insecure: true } : {}),
      ...(registry.repositories !== undefined ? { repositories: registry.repositories } : {}),
      // In the order they are tried, after url.
      ...(registry.mirrors !== undefined ? { mirrors: registry.mirrors.map((mirror) => ({ url: mirror.url, auth: maskAuth(mirror.auth), tags: mirror.tags })) } : {}),
      ...(registry.reserve !== undefined ? { rateLimit: { reserve: registry.reserve } } : {}),
    };
  }
  return stringify({
    listen: `${config.listen.host}:${config.listen.port}`,
    storage: { path: config.storage.path, maxSize: formatSize(config.storage.maxSizeBytes), ...(config.storage.s3 === undefined ? {} : { s3: renderS3(config.storage.s3) }) },
    cache: { tagTTL: formatDuration(config.cache.tagTtlMs), staleIfError: formatDuration(config.cache.staleIfErrorMs) },
    upstream: { timeout: formatDuration(config.upstream.timeoutMs), deadline: formatDuration(config.upstream.deadlineMs), maxRedirects: config.upstream.maxRedirects },
    defaultRegistry: config.defaultRegistry,
    registries,
    aliases: Object.fromEntries(config.aliases),
    clients: {
      ...(config.clients.anonymous !== undefined ? { anonymous: config.clients.anonymous } : {}),
      ...(config.clients.htpasswd ? { htpasswd: config.clients.htpasswd } : {}),
      ...(config.clients.groups.size > 0 ? { groups: Object.fromEntries(config.clients.groups) } : {}),
      ...(config.clients.access !== undefined ? { access: config.clients.access.map((rule) => ({ subjects: rule.subjects, [rule.effect]: rule.patterns })) } : {}),
      loginThrottle: {
        failures: config.clients.loginThrottle.failures,
        lockout: formatDuration(config.clients.loginThrottle.lockoutMs),
        maxLockout: formatDuration(config.clients.loginThrottle.maxLockoutMs),
      },
      connections: {
        max: config.clients.connections.max,
        headersTimeout: formatDuration(config.clients.connections.headersTimeoutMs),
        keepAlive: formatDuration(config.clients.connections.keepAliveMs),
        idle: formatDuration(config.clients.connections.idleMs),
      },
    },
    log: config.log,
    metrics: { auth: config.metrics.auth, ...(config.metrics.listen !== undefined ? { listen: `${config.metrics.listen.host}:${config.metrics.listen.port}` } : {}) },
    ...(config.status.allow !== undefined ? { status: { allow: config.status.allow } } : {}),
    ...(config.tls !== undefined ? { tls: { cert: config.tls.cert, key: config.tls.key, ...(config.tls.clientCA !== undefined ? { clientCA: config.tls.clientCA } : {}) } } : {}),
    ...(config.cluster !== undefined
      ? {
          cluster: {
            listen: `${config.cluster.listen.host}:${config.cluster.listen.port}`,
            peers: config.cluster.peers.map((p) => (p.kind === 'static' ? p.address : `dns:${p.name}:${p.port}`)),
            secret: maskSecret(config.cluster.secret),
            ...(config.cluster.self !== undefined ? { self: config.cluster.self } : {}),
          },
        }
      : {}),
  });
}
