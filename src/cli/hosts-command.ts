import { Argument, Option, type Command } from 'commander';
import type { Config } from '../config/config.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_KINDS, clientConfig, printable, type ClientKind, type MirrorTls } from './client-config.js';
import { mirrorAddress } from './mirror-address.js';
import { removeContainerdHosts, writeClientFiles } from './write-client-files.js';

interface HostsOptions {
  config?: string;
  out?: string;
  mirror?: string;
  ca?: string;
  remove?: boolean;
}

/** The TLS clients need for a config: undefined without `tls:`; the CA read from `--ca FILE` when given. */
function mirrorTls(config: Config, ca: string | undefined): MirrorTls | undefined {
  if (config.tls === undefined) {
    if (ca !== undefined) throw new Error('--ca: the config has no tls: section, so pullgate serves plain HTTP and clients need no CA');
    return undefined;
  }
  if (ca === undefined) return { ca: undefined };
  let pem: string;
  try {
    pem = readFileSync(ca, 'utf8');
  } catch (err) {
    throw new Error(`--ca: cannot read ${ca}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--ca: ${ca} is not a PEM certificate`);
  return { ca: { path: path.resolve(ca), pem } };
}

/**
 * `pullgate hosts containerd|docker|podman|butane [--out DIR] [--mirror HOST:PORT]`: prints the
 * client-side mirror config (docker: bare JSON), or writes it under DIR, merging into an existing
 * daemon.json. Exit 2 on a usage error, e.g. a listen address of 0.0.0.0 without --mirror.
 */
export function registerHostsCommand(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('hosts')
    .description('print (or write under --out) the client-side mirror config for every configured registry')
    .addArgument(new Argument('<client>', CLIENT_KINDS.join(', ')).choices(CLIENT_KINDS))
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .option(
      '--out <dir>',
      'write the files under DIR instead of printing them: containerd /etc/containerd/certs.d, docker /etc/docker (daemon.json is merged), podman /etc/containers/registries.conf.d',
    )
    .addOption(new Option('--mirror <host:port>', "address clients use to reach pullgate (default: the config's listen; required when that is 0.0.0.0 or ::)"))
    .option(
      '--ca <file>',
      "with tls: the CA certificate that signed pullgate's certificate, for clients that do not trust it already (a private CA); containerd's hosts.toml names this path as it is, docker gets certs.d/<host:port>/ca.crt",
    )
    .option('--remove', "containerd with --out: take pullgate's hosts out of every hosts.toml under DIR again (other hosts stay; a file left with none is deleted)")
    .action((client: ClientKind, options: HostsOptions) => {
      if (options.remove === true) {
        try {
          if (client !== 'containerd' || options.out === undefined) throw new Error('--remove works with containerd and --out DIR only');
          const lines = removeContainerdHosts(options.out);
          process.stdout.write(lines.length === 0 ? `nothing to remove: no hosts.toml under ${options.out} has pullgate's host\n` : lines.map((line) => `${line}\n`).join(''));
        } catch (err) {
          process.stderr.write(`pullgate: hosts: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(2);
        }
        return;
      }
      const config = load(options.config);
      let text: string;
      try {
        const { files, warnings } = clientConfig(config, client, mirrorAddress(config.listen, options.mirror), mirrorTls(config, options.ca));
        // On stderr, so a printed file stays what it is and a warning is seen even when stdout goes to a file.
        for (const warning of warnings) process.stderr.write(`pullgate: hosts: warning: ${warning}\n`);
        if (files.length === 0) throw new Error(`nothing to write for ${client}: ${warnings.length > 0 ? 'see the warning above' : 'no configured registry applies'}`);
        text = options.out === undefined ? printable(files) : writeClientFiles(options.out, files).map((line) => `${line}\n`).join('');
      } catch (err) {
        process.stderr.write(`pullgate: hosts: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(2);
      }
      process.stdout.write(text);
    });
}
