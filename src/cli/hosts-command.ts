import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Argument, Option, type Command } from 'commander';
import type { Config } from '../config/config.js';
import { clientFiles, type ClientKind } from './client-config.js';

/** `pullgate hosts containerd|docker|podman [--out DIR]`: print or write client-side mirror config. */
export function registerHostsCommand(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('hosts')
    .description('print the client-side mirror config for every configured registry')
    .addArgument(new Argument('<client>', 'containerd, docker or podman').choices(['containerd', 'docker', 'podman']))
    .option('-c, --config <file>', 'config file')
    .option('--out <dir>', 'write the files under DIR (e.g. /etc/containerd/certs.d) instead of printing them')
    .addOption(new Option('--mirror <host:port>', 'address clients use to reach pullgate (default: listen)'))
    .action((client: ClientKind, options: { config?: string; out?: string; mirror?: string }) => {
      const config = load(options.config);
      const mirror = options.mirror ?? `${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${config.listen.port}`;
      for (const file of clientFiles(config, client, mirror)) {
        if (options.out === undefined) {
          process.stdout.write(`# --- ${file.path}\n${file.content}\n`);
        } else {
          const target = path.join(options.out, file.path);
          mkdirSync(path.dirname(target), { recursive: true });
          writeFileSync(target, file.content);
          process.stdout.write(`wrote ${target}\n`);
        }
      }
    });
}
