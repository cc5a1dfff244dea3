import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Daemon, type RunResult, run, runOk, startDaemon } from '../../../support/proc.js';
import { waitFor } from '../../../support/wait.js';
import type { Workspace } from '../../../support/workspace.js';

/** A private containerd daemon (own root, state and sockets under the workspace) and a `ctr` bound to it. */
export interface Containerd {
  daemon: Daemon;
  address: string;
  namespace: string;
  /** Runs `ctr --address <sock> --namespace <ns> ...args`. */
  ctr(args: readonly string[]): Promise<RunResult>;
  /** Like ctr, but throws with stderr on a non-zero exit. */
  ctrOk(args: readonly string[]): Promise<RunResult>;
  /** Runs ctr in another containerd namespace (its own images and content view). */
  ctrIn(namespace: string, args: readonly string[]): Promise<RunResult>;
}

// Plugins a pull does not need and that want kernel features or host paths.
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

/** Starts containerd (its files under `<workspace>/<name>`) with a temp config; resolves once `ctr version` reaches it. */
export async function startContainerd(ws: Workspace, name = 'containerd'): Promise<Containerd> {
  const dir = await ws.mkdir(name);
  const address = join(dir, 'containerd.sock');
  const configPath = join(dir, 'config.toml');
  await mkdir(join(dir, 'opt'), { recursive: true });
  await writeFile(
    configPath,
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      `disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}`,
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(join(dir, 'containerd-ttrpc.sock'))}`,
      '[debug]',
      '  level = "info"',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(dir, 'opt'))}`,
      '',
    ].join('\n'),
  );
  const daemon = startDaemon({
    name,
    command: 'containerd',
    args: ['--config', configPath],
    logPath: ws.path(`${name}.log`),
  });
  ws.defer(() => daemon.stop());
  const namespace = 'pullgate-e2e';
  const ctrIn = (ns: string, args: readonly string[]): Promise<RunResult> =>
    run('ctr', ['--address', address, '--namespace', ns, ...args]);
  const ctr = (args: readonly string[]): Promise<RunResult> => ctrIn(namespace, args);
  const ctrOk = (args: readonly string[]): Promise<RunResult> =>
    runOk('ctr', ['--address', address, '--namespace', namespace, ...args]);
  await waitFor(async () => ((await ctr(['version'])).code === 0 ? true : undefined), {
    what: `${name} to answer \`ctr version\``,
    timeoutMs: 30_000,
    intervalMs: 200,
    abortIf: () => { daemon.assertRunning(); },
    describe: () => daemon.logTail(),
  });
  return { daemon, address, namespace, ctr, ctrOk, ctrIn };
}

/** A single mirror entry for `hosts.toml`. */
export interface MirrorHost {
  url: string;
  capabilities: readonly ('pull' | 'resolve' | 'push')[];
}

/**
 * Writes `<hostsDir>/<namespace>/hosts.toml`: the mirrors are tried first, then `server`.
 * Returns hostsDir, for `ctr images pull --hosts-dir`.
 */
export async function writeHostsToml(hostsDir: string, namespace: string, server: string, mirrors: readonly MirrorHost[]): Promise<string> {
  const dir = join(hostsDir, namespace);
  await mkdir(dir, { recursive: true });
  const lines = [`server = ${JSON.stringify(server)}`, ''];
  for (const m of mirrors) {
    lines.push(`[host.${JSON.stringify(m.url)}]`, `  capabilities = ${JSON.stringify(m.capabilities)}`, '');
  }
  await writeFile(join(dir, 'hosts.toml'), lines.join('\n'));
  return hostsDir;
}

/** The image digest that `ctr images ls` lists for `ref`, or undefined. */
export function imageDigestFromLs(lsOutput: string, ref: string): string | undefined {
  for (const line of lsOutput.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[0] === ref) return cols.find((c) => /^sha256:[0-9a-f]{64}$/.test(c));
  }
  return undefined;
}
