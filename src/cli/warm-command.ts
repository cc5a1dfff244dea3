import type { Command } from 'commander';
import { basicAuthorization } from '../auth/credential.js';
import type { Config } from '../config/config.js';
import { createLogger, defaultDeps, type Deps } from '../core/deps.js';
import type { LocalMirror } from '../warm/local-mirror.js';
import { type PlatformChoice, hostPlatform, parsePlatforms } from '../warm/manifest-content.js';
import { plainDisplay, terminalDisplay, type WarmDisplay } from '../warm/progress.js';

interface WarmOptions {
  config?: string;
  platform?: string;
  server?: string;
  user?: string;
}

/** Blobs downloaded at once per image. */
const PARALLEL_BLOBS = 4;

function usage(message: string): never {
  process.stderr.write(`pullgate: warm: ${message}\n`);
  process.exit(2);
}

function display(): WarmDisplay {
  return process.stdout.isTTY ? terminalDisplay((text) => process.stdout.write(text), () => performance.now()) : plainDisplay((line) => process.stdout.write(`${line}\n`));
}

/**
 * `pullgate warm IMAGE... [--platform os/arch|all]`: fetches each image's manifests and blobs
 * through a mirror, so its cache holds them: the running pullgate at `--server` or at the config's
 * listen address, else pullgate started in this process on the config's storage. Exit 0 when every
 * image was warmed, 1 when one failed, 2 on a usage or config error.
 */
export function registerWarmCommand(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('warm <images...>')
    .description("fetch manifests and all blobs of each IMAGE into the cache (through the running mirror, else an in-process one on the config's storage)")
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .option('--platform <os/arch|all>', 'platforms to take from a multi-platform image, comma-separated, or all (default: this machine\'s, e.g. linux/amd64)')
    .option('--server <url>', "a running pullgate to warm (default: the config's listen address when a mirror answers there)")
    .option('--user <name>', 'client user for a mirror that requires htpasswd; the password is read from $PULLGATE_PASSWORD')
    .action(async (images: string[], options: WarmOptions) => {
      let config: Config;
      let platforms: PlatformChoice;
      try {
        config = load(options.config);
        platforms = options.platform === undefined ? [hostPlatform()] : parsePlatforms(options.platform);
      } catch (err) {
        usage(err instanceof Error ? err.message : String(err));
      }
      let authorization: string | undefined;
      if (options.user !== undefined) {
        const password = process.env.PULLGATE_PASSWORD;
        if (password === undefined) usage('--user needs the password in $PULLGATE_PASSWORD');
        authorization = basicAuthorization(options.user, password);
      }
      // The in-process mirror (the server) and the warm walk load only now: the CLI's other commands start without them.
      const [{ findRunningMirror, listenUrl, startLocalMirror }, { warmImage }] = await Promise.all([import('../warm/local-mirror.js'), import('../warm/warm.js')]);
      const base = defaultDeps('silent');
      // The in-process mirror logs errors only: the progress display reports what failed and why.
      const deps: Deps = { ...base, logger: createLogger('error', { write: (line: string) => process.stderr.write(line) }) };
      let local: LocalMirror | undefined;
      let failures = 0;
      try {
        let mirror = options.server?.replace(/\/+$/, '') ?? (await findRunningMirror(listenUrl(config.listen), deps.dispatcher));
        if (mirror === undefined) {
          local = await startLocalMirror(config, deps);
          mirror = local.url;
          process.stderr.write(`pullgate: warm: no mirror answers at ${listenUrl(config.listen)}; filling ${config.storage.path} directly\n`);
        }
        const show = display();
        for (const image of images) {
          try {
            show.done(await warmImage(image, { mirror, authorization, platforms, strictPlatform: options.platform !== undefined, timeoutMs: config.upstream.timeoutMs, parallel: PARALLEL_BLOBS }, { dispatcher: deps.dispatcher, now: () => performance.now() }, show));
          } catch (err) {
            failures += 1;
            show.failed(image, err instanceof Error ? err.message : String(err));
          }
        }
      } catch (err) {
        process.stderr.write(`pullgate: warm: ${err instanceof Error ? err.message : String(err)}\n`);
        failures = -1;
      } finally {
        await local?.close();
        await deps.dispatcher.close();
      }
      process.exit(failures === 0 ? 0 : failures < 0 ? 2 : 1);
    });
}
