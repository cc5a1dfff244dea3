import type { Config } from '../config/config.js';
import { containerdLoginWarning } from '../config/warnings.js';
import { BUTANE_DOCKER_DIR, butane } from './butane-config.js';
import { daemonJson, mergeDaemonJson, mirrorEntries } from './daemon-json.js';
import { PULLGATE_MARK, mergeHostsToml } from './hosts-toml.js';
import type { ClientFile, Merged } from './client-file.js';

export type { ClientFile, Merged };


/**
 * pullgate over HTTPS (`tls:` in its config), as clients must see it: `ca` is the CA certificate that
 * signed pullgate's certificate (`hosts --ca FILE`), needed when that CA is not in the clients' system
 * trust; `path` is where containerd's hosts.toml refers to it.
 */
export interface MirrorTls {
  ca: { path: string; pem: string } | undefined;
}

/** The files of one client kind, and what the operator must know about them (printed on stderr). */
export interface ClientConfig {
  files: ClientFile[];
  /** Registries left out, logins the client cannot send …: each a sentence with its fix. */
  warnings: string[];
}

/** Makes the files of one client kind from the config, the address clients reach pullgate at, and its TLS (undefined: plain HTTP). */
export type Generator = (config: Config, mirror: string, tls: MirrorTls | undefined) => ClientConfig;

/** The file name of the CA certificate docker and podman read from `certs.d/<host:port>/`. */
const CA_FILE = 'ca.crt';

function upstreamServer(config: Config, key: string): string {
  return config.registries.get(key)?.url ?? `https://${key}`;
}

/**
 * containerd `certs.d/<registry>/hosts.toml`, one per configured registry; containerd adds `?ns=`
 * itself. Over TLS the host is `https://` and, with a CA, `ca = "<path>"` names the CA file.
 * Written into an existing file, it is merged (hosts-toml.ts): other hosts and `server` stay.
 */
export function containerd(config: Config, mirror: string, tls?: MirrorTls): ClientConfig {
  const login = containerdLoginWarning(config);
  const mirrorUrl = `${tls === undefined ? 'http' : 'https'}://${mirror}`;
  const files = [...config.registries.keys()].map((key): ClientFile => {
    const content = [
      `# ${key} through pullgate; falls back to the registry itself if pullgate is down.`,
      `server = "${upstreamServer(config, key)}"`,
      '',
      `[host."${mirrorUrl}"]`,
      `  ${PULLGATE_MARK}`,
      '  capabilities = ["pull", "resolve"]',
      ...(tls?.ca !== undefined ? [`  ca = ${JSON.stringify(tls.ca.path)}`] : []),
      '',
    ].join('\n');
    // An existing hosts.toml keeps its other hosts and its server: pullgate's host goes first.
    return { path: `${key}/hosts.toml`, syntax: 'toml', content, mergeInto: (existing) => mergeHostsToml(existing, content, mirrorUrl) };
  });
  return { files, warnings: login === undefined ? [] : [login] };
}

/**
 * docker `daemon.json`: registry-mirrors (Docker Hub only), merged into an existing file when
 * written; over TLS an `https://` mirror and, with a CA, `certs.d/<host:port>/ca.crt` beside it.
 * Docker sends only Docker Hub pulls to registry-mirrors, and pullgate answers them from its
 * defaultRegistry: without one (no docker.io in registries) the mirror would answer every Hub pull
 * 404 first, so registry-mirrors is left out with a warning; pulls by prefix still work.
 */
export function docker(config: Config, mirror: string, tls?: MirrorTls): ClientConfig {
  const secure = tls !== undefined;
  const hub = config.defaultRegistry !== undefined;
  const warnings = hub
    ? []
    : [
        `docker: registry-mirrors left out: pullgate mirrors no Docker Hub (no docker.io in registries, no defaultRegistry), ` +
          `so Docker would send every Docker Hub pull to it first and get 404; pull the configured registries by prefix ` +
          `(docker pull ${mirror}/${[...config.registries.keys()][0] ?? 'ghcr.io'}/…), or add docker.io: {} to registries`,
      ];
  const files: ClientFile[] = [];
  if (mirrorEntries(mirror, secure, hub).length > 0) {
    files.push({
      path: 'daemon.json',
      syntax: 'json',
      content: daemonJson(mirror, secure, hub),
      // A new file is the merge into an empty object, so the note says what it holds.
      mergeInto: (existing) => mergeDaemonJson(existing ?? '{}', mirror, secure, hub),
    });
  }
  if (tls?.ca !== undefined) files.push({ path: `certs.d/${mirror}/${CA_FILE}`, syntax: 'pem', content: tls.ca.pem });
  return { files, warnings };
}

/**
 * The path component podman's mirror location uses for a registry key: the key itself, or for a
 * `host:port` key (a reference cannot carry a colon in its path) an alias of it, one with a dot
 * preferred (it cannot shadow a Docker Hub namespace); undefined when the key has no usable alias.
 */
export function podmanPathFor(config: Config, key: string): string | undefined {
  if (!key.includes(':')) return key;
  const aliases = [...config.aliases].filter(([, target]) => target === key).map(([alias]) => alias);
  return aliases.find((alias) => alias.includes('.')) ?? aliases[0];
}

/**
 * podman/buildah/CRI-O `registries.conf.d/pullgate.conf` with a path-prefixed mirror per registry.
 * A `host:port` key without an alias is left out (its mirror location would be an invalid reference,
 * and podman would then fail every pull of that registry), with a warning and a comment in the file.
 */
export function podman(config: Config, mirror: string, tls?: MirrorTls): ClientConfig {
  const warnings: string[] = [];
  const blocks: string[] = [];
  for (const key of config.registries.keys()) {
    const via = podmanPathFor(config, key);
    if (via === undefined) {
      const suggestion = key.replace(/:/g, '-');
      warnings.push(
        `podman: ${key} left out: its mirror location "${mirror}/${key}" is not a valid reference (a path cannot carry host:port), ` +
          `and podman would fail every pull of ${key}; give it an alias with a dot, e.g. aliases: { ${suggestion}: "${key}" }, and run hosts podman again`,
      );
      blocks.push(`# ${key}: left out, a mirror location cannot carry host:port in its path; add an alias for it (aliases: { ${suggestion}: "${key}" })\n`);
      continue;
    }
    blocks.push([`[[registry]]`, `prefix = "${key}"`, `location = "${key}"`, '', '[[registry.mirror]]', `location = "${mirror}/${via}"`, `insecure = ${tls === undefined}`, ''].join('\n'));
  }
  const trust =
    tls?.ca === undefined
      ? ''
      : `# pullgate's certificate is signed by a private CA: install it as /etc/containers/certs.d/${mirror}/${CA_FILE}\n# (or ~/.config/containers/certs.d/${mirror}/${CA_FILE} for rootless podman).\n`;
  return {
    files: [{ path: 'pullgate.conf', dropInDir: 'registries.conf.d', syntax: 'toml', content: `# Generated by pullgate hosts podman\n${trust}\n${blocks.join('\n')}` }],
    warnings,
  };
}

/** Every client kind and its generator: a kind without a generator does not compile. */
export type ClientKind = 'containerd' | 'docker' | 'podman' | 'butane';

const GENERATORS: Record<ClientKind, Generator> = {
  containerd,
  docker,
  podman,
  // On the host, containerd reads the CA that docker's certs.d holds (written by the same Butane config).
  butane: (config, mirror, tls) => {
    const placed = tls?.ca === undefined ? tls : { ca: { ...tls.ca, path: `${BUTANE_DOCKER_DIR}/certs.d/${mirror}/${CA_FILE}` } };
    const forContainerd = containerd(config, mirror, placed);
    const forDocker = docker(config, mirror, placed);
    return { files: butane(forContainerd.files, forDocker.files), warnings: [...forContainerd.warnings, ...forDocker.warnings] };
  },
};

function isClientKind(name: string): name is ClientKind {
  return Object.hasOwn(GENERATORS, name);
}

/** The client kinds `pullgate hosts` accepts, in the table's order. */
export const CLIENT_KINDS: readonly ClientKind[] = Object.keys(GENERATORS).filter(isClientKind);

/** The client-side files that point a client at the mirror for every configured registry, with their warnings. */
export function clientConfig(config: Config, kind: ClientKind, mirror: string, tls?: MirrorTls): ClientConfig {
  return GENERATORS[kind](config, mirror, tls);
}

/** The files alone of clientConfig(). */
export function clientFiles(config: Config, kind: ClientKind, mirror: string, tls?: MirrorTls): ClientFile[] {
  return clientConfig(config, kind, mirror, tls).files;
}

/** A file's path as a person would see it under --out: `registries.conf.d/pullgate.conf`. */
export function displayPath(file: ClientFile): string {
  return file.dropInDir === undefined ? file.path : `${file.dropInDir}/${file.path}`;
}

/** The text `pullgate hosts KIND` prints: a lone file as it is, several TOML/YAML files each under a `# --- path` heading. */
export function printable(files: readonly ClientFile[]): string {
  if (files.length === 1 && files[0] !== undefined) return files[0].content;
  return files
    .map((file) => {
      if (file.syntax === 'json' || file.syntax === 'pem') {
        throw new Error(`${displayPath(file)} cannot be printed beside other files (it has no comments to separate them); write them with --out DIR`);
      }
      return `# --- ${displayPath(file)}\n${file.content}`;
    })
    .join('\n');
}
