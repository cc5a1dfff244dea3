import type { Command } from 'commander';
import { basicAuthorization } from '../auth/credential.js';
import { systemClock } from '../core/clock.js';
import type { Config } from '../config/config.js';
import { formatSize } from '../config/units.js';
import { createLogger, defaultDeps, type Deps } from '../core/deps.js';
import { describeError } from '../core/errors.js';
import type { BundleDisplay } from '../bundle/progress.js';
import { type PlatformChoice, parsePlatforms } from '../warm/manifest-content.js';

interface ExportCommandOptions {
  out?: string;
  platform?: string;
  have?: string;
  config?: string;
  server?: string;
  user?: string;
}

function usage(command: string, message: string): never {
  process.stderr.write(`pullgate: ${command}: ${message}\n`);
  process.exit(2);
}

async function display(): Promise<BundleDisplay> {
  const { plainBundleDisplay, terminalBundleDisplay } = await import('../bundle/progress.js');
  const now = (): number => performance.now();
  return process.stdout.isTTY ? terminalBundleDisplay((text) => process.stdout.write(text), now) : plainBundleDisplay((line) => process.stdout.write(`${line}\n`), now);
}

/** The CLI's Deps for a bundle command: errors of the in-process mirror on stderr, the rest silent (the display reports). */
function quietDeps(): Deps {
  const base = defaultDeps('silent');
  return { ...base, logger: createLogger('error', { write: (line: string) => process.stderr.write(line) }) };
}

/**
 * `pullgate export REF... --out FILE` writes an OCI layout bundle of the images, their content read
 * through the cache (an in-process mirror on the config's storage, or `--server`); `pullgate import FILE`
 * verifies a bundle and publishes its images into the cache.
 */
export function registerBundleCommands(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('export <refs...>')
    .description('write the images (through the cache, fetched first when missing) to an OCI image layout tar for an air-gapped site; .tar.zst compresses it')
    .option('-o, --out <file>', 'the bundle to write: FILE.tar, or FILE.tar.zst for zstd')
    .option('--platform <os/arch|all>', 'platforms to take from a multi-platform image, comma-separated, or all (default: all)')
    .option('--have <file>', "digests the far side holds, one per line (its `pullgate cache digests`): their blobs are left out")
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .option('--server <url>', "a running pullgate to read through (default: the one at the config's listen address, else one started in this process on the config's storage)")
    .option('--user <name>', 'client user for a --server that requires htpasswd; the password is read from $PULLGATE_PASSWORD')
    .action(async (refs: string[], options: ExportCommandOptions) => {
      let config: Config;
      let platforms: PlatformChoice;
      if (options.out === undefined) usage('export', '--out FILE is required (FILE.tar, or FILE.tar.zst for zstd)');
      const out = options.out;
      try {
        config = load(options.config);
        platforms = options.platform === undefined ? 'all' : parsePlatforms(options.platform);
      } catch (err) {
        usage('export', describeError(err));
      }
      let authorization: string | undefined;
      if (options.user !== undefined) {
        const password = process.env.PULLGATE_PASSWORD;
        if (password === undefined) usage('export', '--user needs the password in $PULLGATE_PASSWORD');
        authorization = basicAuthorization(options.user, password);
      }
      const [{ readHaveList }, { exportBundle }, { createBundleOutput }, { findRunningMirror, listenUrl, startLocalMirror }] = await Promise.all([
        import('../bundle/have-list.js'),
        import('../bundle/export.js'),
        import('../bundle/bundle-file.js'),
        import('../warm/local-mirror.js'),
      ]);
      let have: Set<string>;
      try {
        have = options.have === undefined ? new Set() : await readHaveList(options.have);
      } catch (err) {
        usage('export', describeError(err));
      }
      const deps = quietDeps();
      const show = await display();
      // As warm does: the running mirror when one answers (an in-process one over its storage would remove its
      // fills' temp files at start), else pullgate started in this process.
      let mirror = options.server?.replace(/\/+$/, '') ?? (await findRunningMirror(listenUrl(config.listen), deps.dispatcher));
      const local = mirror === undefined ? await startLocalMirror(config, deps) : undefined;
      mirror ??= local?.url ?? '';
      let code = 0;
      let output: ReturnType<typeof createBundleOutput> | undefined;
      try {
        output = createBundleOutput(out);
        const started = performance.now();
        const summary = await exportBundle(refs, output.stream, { mirror, authorization, platforms, have, timeoutMs: config.upstream.timeoutMs, dispatcher: deps.dispatcher }, show);
        await output.commit();
        const seconds = (performance.now() - started) / 1000;
        const leftOut = summary.leftOut > 0 ? `, ${summary.leftOut} blobs left out (--have)` : '';
        show.line(`exported ${summary.images} image${summary.images === 1 ? '' : 's'} to ${out}: ${summary.manifests} manifests, ${summary.blobs} blobs${leftOut}, ${formatSize(summary.bytes)} of tar in ${seconds.toFixed(1)} s`);
      } catch (err) {
        await output?.abort();
        show.line(`pullgate: export: FAILED: ${describeError(err)}; nothing written to ${out}`);
        code = 1;
      } finally {
        await local?.close();
        await deps.dispatcher.close();
      }
      process.exit(code);
    });

  program
    .command('import <file>')
    .description('verify a bundle (from `pullgate export` or `skopeo copy … oci-archive:`) and publish its images into the cache, served offline however old')
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .option('--pin', 'keep the imported images out of LRU eviction until `pullgate cache unpin REF`')
    .action(async (file: string, options: { config?: string; pin?: boolean }) => {
      let config: Config;
      try {
        config = load(options.config);
      } catch (err) {
        usage('import', describeError(err));
      }
      const [{ importBundle }, { openBundleInput }, { openCache }, { route }] = await Promise.all([
        import('../bundle/import.js'),
        import('../bundle/bundle-file.js'),
        import('./cache-commands.js'),
        import('../routing/route.js'),
      ]);
      const show = await display();
      let input: Awaited<ReturnType<typeof openBundleInput>>;
      try {
        input = await openBundleInput(file);
      } catch (err) {
        usage('import', describeError(err));
      }
      const cache = openCache(config);
      let code = 0;
      const started = performance.now();
      try {
        const result = await importBundle(input.chunks, cache, { route: (name) => route(config, name, undefined), now: () => systemClock.now(), pin: options.pin === true }, { progress: (bytes) => show.progress(bytes, undefined) });
        await input.done;
        for (const image of result.images) {
          if (image.imported) {
            const left = image.platformsLeftOut > 0 ? ` (${image.platformsLeftOut} platform manifests not in the bundle)` : '';
            show.line(`${image.ref}: imported ${image.manifests} manifests, ${image.blobs} blobs${left}`);
          } else {
            show.line(`${image.ref}: REFUSED: ${image.reason ?? 'unknown reason'}; nothing of it was imported`);
            code = 1;
          }
        }
        const seconds = (performance.now() - started) / 1000;
        show.line(`${file}: ${result.images.filter((i) => i.imported).length} of ${result.images.length} images imported; ${result.staged} blobs (${formatSize(result.stagedBytes)}) written, ${result.alreadyHeld} already held, in ${seconds.toFixed(1)} s`);
      } catch (err) {
        show.line(`pullgate: import: ${file}: ${describeError(err)}; nothing imported`);
        code = 1;
      } finally {
        input.close();
        await cache.close();
      }
      process.exit(code);
    });
}
