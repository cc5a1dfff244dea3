import type { Config } from '../config/config.js';
import { formatSize } from '../config/units.js';
import { VERSION } from '../core/version.js';
import { isUnspecifiedHost, joinHostPort } from './mirror-address.js';

/** What the start summary says beyond the config: how many processes serve, and why that many. */
export interface StartFacts {
  workers: number;
  workersReason: string | undefined;
}

/** Where a summary goes: stdout, or a stand-in with an `isTTY` flag in tests. */
export interface SummaryOutput {
  isTTY?: boolean;
  write(text: string): unknown;
}

/** Registries named in full before the rest are only counted. */
const REGISTRIES_SHOWN = 8;

/**
 * The human-readable lines `serve` prints once at start on a terminal: where it listens and with which
 * scheme, the storage and its size budget, the registries, the workers, and how to point clients at it.
 */
export function startSummary(config: Config, facts: StartFacts): string {
  const scheme = config.tls === undefined ? 'http' : 'https';
  const { host, port } = config.listen;
  const everywhere = isUnspecifiedHost(host);
  const address = `${scheme}://${joinHostPort(host, port)}`;
  const registries = [...config.registries.keys()];
  const named = registries.length <= REGISTRIES_SHOWN + 1 ? registries.join(', ') : `${registries.slice(0, REGISTRIES_SHOWN).join(', ')} and ${registries.length - REGISTRIES_SHOWN} more`;
  const reason = facts.workersReason === undefined ? '' : ` (${facts.workersReason})`;
  // The address clients dial: a wildcard listen address names none, so the hosts commands need --mirror.
  const client = everywhere ? `127.0.0.1:${port}` : joinHostPort(host, port);
  const mirrorFlag = everywhere ? ` --mirror $(hostname -f):${port}` : '';
  const tlsFlag = config.tls === undefined ? '--tls-verify=false ' : '';
  const source = config.source === '' ? '' : `  config:     ${config.source}\n`;
  const example = registries.includes('docker.io') ? 'library/alpine:3.20' : registries[0] === undefined ? 'REGISTRY/NAME:TAG' : `${registries[0]}/NAME:TAG`;
  return [
    `pullgate ${VERSION} listening on ${address}${everywhere ? ' (every interface)' : ''}`,
    `${source}  storage:    ${config.storage.path} (up to ${formatSize(config.storage.maxSizeBytes)})`,
    ...(config.storage.s3 === undefined ? [] : [`  shared:     s3 bucket ${config.storage.s3.bucket}`]),
    `  registries: ${named || 'none (add some under registries: in the config)'}`,
    `  workers:    ${facts.workers}${reason}`,
    ...(config.metrics.listen === undefined ? [] : [`  metrics:    http://${joinHostPort(config.metrics.listen.host, config.metrics.listen.port)}/metrics`]),
    'Point a client at it:',
    `  skopeo inspect ${tlsFlag}docker://${client}/${example}`,
    `  pullgate hosts containerd${mirrorFlag} --out /etc/containerd/certs.d   # containerd, kubelet`,
    `  pullgate hosts docker${mirrorFlag} --out /etc/docker                   # merges into daemon.json`,
    `  pullgate hosts podman${mirrorFlag} --out /etc/containers/registries.conf.d`,
    'Logs are the JSON lines on this stdout (without a terminal, only they are printed).',
    '',
  ].join('\n');
}

/** Prints the start summary when `out` is a terminal (a person is watching); JSON logs stay as they are. True when printed. */
export function printStartSummary(out: SummaryOutput, config: Config, facts: StartFacts): boolean {
  if (out.isTTY !== true) return false;
  out.write(startSummary(config, facts));
  return true;
}
