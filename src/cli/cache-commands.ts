import type { Command } from 'commander';
import { Cache } from '../cache/cache.js';
import { cacheStats, pruneShared, verifyCache } from '../cache/maintenance.js';
import { sharedTierFor } from '../cache/shared-tier.js';
import type { Config } from '../config/config.js';
import { formatDuration, formatSize, parseSize } from '../config/units.js';
import { removeImage, type Removal } from '../cache/remove-image.js';
import { writeDigests } from '../bundle/have-list.js';
import { parseImageRef } from '../doctor/image-ref.js';
import { looksLikeDigest } from '../routing/reference.js';
import { route } from '../routing/route.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logging.js';
import { Metrics } from '../core/metrics.js';

/** The cache of a config, for a command run beside (or instead of) the server: its storage and shared tier. */
export function openCache(config: Config, level = 'warn'): Cache {
  const logger = createLogger(level, { write: (line: string) => process.stderr.write(line) });
  const shared = sharedTierFor(config.storage, { clock: systemClock, logger });
  return new Cache({
    root: config.storage.path,
    maxSizeBytes: config.storage.maxSizeBytes,
    clock: systemClock,
    logger,
    metrics: new Metrics(),
    ...(shared === undefined ? {} : { shared }),
  });
}

/**
 * Lines to a stream in chunks of about 64 kB, waiting for 'drain' when the stream is full, so a long
 * listing piped into a slow reader neither buffers in memory nor costs one write per line.
 */
class LineWriter {
  private pending: string[] = [];
  private pendingChars = 0;
  private started = false;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  async line(text: string): Promise<void> {
    this.pending.push(text);
    this.pendingChars += text.length + 1;
    // The first line goes out at once, so a reader sees the header before the rows are read.
    if (this.pendingChars >= 65_536 || !this.started) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.started = true;
    this.pending = [];
    this.pendingChars = 0;
    if (!this.stream.write(text)) await new Promise<void>((resolve) => this.stream.once('drain', resolve));
  }
}

function when(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

/**
 * `cache ls`: every blob and manifest, most recently used first, with the repositories it was confirmed
 * for. Streamed: the header at once, then rows a page at a time (a million rows are never held in memory).
 */
export async function listCache(cache: Cache, stream: NodeJS.WritableStream): Promise<void> {
  const index = cache.contentIndex;
  const out = new LineWriter(stream);
  await out.line('DIGEST\tKIND\tSIZE\tLAST ACCESS\tREPOSITORIES');
  for await (const row of index.blobs('mru')) {
    const repos = (await index.linksOf(row.digest)).map((link) => `${link.registry}/${link.repository}`);
    await out.line(`${row.digest}\t${row.kind}\t${formatSize(row.size)}\t${when(row.last_access)}\t${repos.join(',') || '-'}`);
  }
  await out.flush();
}

/** The lines `cache rm` prints for what it removed and kept. */
export function removalReport(ref: string, removal: Removal, tagTtlMs: number): string[] {
  const lines: string[] = [];
  if (removal.tag !== undefined) lines.push(`removed tag ${removal.tag.registry}/${removal.tag.repository}:${removal.tag.tag} (was ${removal.digest ?? '-'})`);
  const manifests = removal.removed.filter((row) => row.kind === 'manifest').length;
  const blobs = removal.removed.length - manifests;
  if (removal.removed.length > 0 || removal.kept.length > 0) lines.push(`removed ${manifests} manifests and ${blobs} blobs of ${ref}, freed ${formatSize(removal.freedBytes)}`);
  for (const { digest, reason } of removal.kept) lines.push(`kept ${digest}: ${reason}`);
  // The server keeps tag rows and manifest bytes in memory; it does not read this removal until the tag is due.
  lines.push(
    `note: a pullgate serving this storage now may answer it from memory until its tag is revalidated (cache.tagTTL: ${formatDuration(tagTtlMs)}); restart it to drop that at once`,
  );
  return lines;
}

/** `pullgate cache stats|ls|digests|prune|verify|rm|unpin`: inspect and maintain the cache of a config. */
export function registerCacheCommands(program: Command, load: (file: string | undefined) => Config): void {
  const cache = program.command('cache').description('inspect and maintain the cache');
  const withCache = <T>(file: string | undefined, fn: (store: Cache) => T | Promise<T>): Promise<T> => {
    const store = openCache(load(file));
    return Promise.resolve(fn(store)).finally(() => store.close());
  };

  cache
    .command('stats')
    .description('how much the cache holds')
    .option('-c, --config <file>', 'config file')
    .action((options: { config?: string }) =>
      withCache(options.config, async (store) => {
        const stats = await cacheStats(store);
        const lines = [
          `storage:   ${store.localStore.location}`,
          `blobs:     ${stats.blobs}`,
          `manifests: ${stats.manifests}`,
          `tags:      ${stats.tags}`,
          `size:      ${formatSize(stats.bytes)} of ${formatSize(stats.maxBytes)} (${((100 * stats.bytes) / Math.max(1, stats.maxBytes)).toFixed(1)}%)`,
          `accessed:  ${when(stats.oldestAccess)} .. ${when(stats.newestAccess)}`,
          ...(stats.shared === undefined
            ? []
            : [
                `shared:    ${stats.shared.location}`,
                `  objects: ${stats.shared.objects}`,
                `  size:    ${formatSize(stats.shared.bytes)}`,
                `  written: ${when(stats.shared.oldest)} .. ${when(stats.shared.newest)}`,
              ]),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  cache
    .command('ls')
    .description('list cached blobs and manifests, most recently used first')
    .option('-c, --config <file>', 'config file')
    .action((options: { config?: string }) =>
      withCache(options.config, (store) => listCache(store, process.stdout)),
    );

  cache
    .command('digests')
    .description('every blob and manifest digest the cache holds, one per line: the have-list for `pullgate export --have` on a connected mirror')
    .option('-c, --config <file>', 'config file')
    .action((options: { config?: string }) =>
      withCache(options.config, async (store) => {
        await writeDigests(store.contentIndex, (text) =>
          process.stdout.write(text) ? Promise.resolve() : new Promise<void>((resolve) => process.stdout.once('drain', resolve)),
        );
      }),
    );

  cache
    .command('prune')
    .description('evict least recently used blobs down to a size (default: storage.maxSize); delete shared objects not read for storage.s3.maxAge')
    .option('-c, --config <file>', 'config file')
    .option('--to <size>', 'target size, e.g. 5GiB or 0')
    .action((options: { config?: string; to?: string }) => {
      const config = load(options.config);
      return withCache(options.config, async (store) => {
        const target = options.to === undefined ? store.maxSizeBytes : parseSize(options.to);
        const { evicted, freed, busy } = await store.evictTo(target);
        process.stdout.write(`evicted ${evicted} blobs, freed ${formatSize(freed)}; cache now ${formatSize(store.sizeBytes)}\n`);
        if (busy === true) {
          // The running server's pass (it holds the index's eviction lease) evicts to storage.maxSize, not to --to.
          process.stderr.write('pullgate: another pullgate process is evicting from this storage now; run prune again when its pass ends\n');
          process.exitCode = 1;
        }
        const shared = await pruneShared(store, config.storage.s3?.maxAgeMs, systemClock);
        if (shared !== undefined) process.stdout.write(`shared store: deleted ${shared.deleted} objects not read for storage.s3.maxAge, freed ${formatSize(shared.freed)}\n`);
        else if (store.shared !== undefined) process.stdout.write('shared store: kept as it is (no storage.s3.maxAge; bound it with a bucket lifecycle rule)\n');
      });
    }
    );

  cache
    .command('verify')
    .description('re-hash every blob and repair index/file mismatches; exits 1 on damage it could not repair')
    .option('-c, --config <file>', 'config file')
    .action((options: { config?: string }) =>
      withCache(options.config, async (store) => {
        const report = await verifyCache(store);
        for (const problem of report.problems) {
          process.stdout.write(`${problem.repaired ? 'repaired' : 'NOT REPAIRED'}\t${problem.digest}\t${problem.problem}\n`);
        }
        const unrepaired = report.problems.filter((problem) => !problem.repaired).length;
        const shared = report.sharedChecked === undefined ? '' : ` and ${report.sharedChecked} shared objects`;
        process.stdout.write(`checked ${report.checked} files${shared}: ${report.problems.length} problems, ${unrepaired} not repaired\n`);
        if (unrepaired > 0) process.exitCode = 1;
      }),
    );

  cache
    .command('unpin <ref>')
    .description('let eviction take an image imported with `pullgate import --pin` again (REF as it was imported)')
    .option('-c, --config <file>', 'config file')
    .action((ref: string, options: { config?: string }) => {
      const config = load(options.config);
      const { name, reference } = parseImageRef(ref);
      const target = route(config, name, undefined);
      return withCache(options.config, (store) => {
        const released = store.index.unpin(target.registry, target.repository, reference);
        if (released === 0) {
          process.stderr.write(`pullgate: cache unpin: ${ref} is not pinned\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`unpinned ${released} digests of ${ref}; eviction may take those no other pinned image keeps\n`);
      });
    });

  cache
    .command('rm <ref>')
    .description('remove a cached image: its tag, its manifest and the child manifests and blobs only it references (--tag: only the tag, so the next pull asks upstream again)')
    .option('-c, --config <file>', 'config file')
    .option('--tag', 'drop only the tag row')
    .action((ref: string, options: { config?: string; tag?: boolean }) => {
      const config = load(options.config);
      const { name, reference } = parseImageRef(ref);
      const target = route(config, name, undefined);
      const kind = looksLikeDigest(reference) ? 'digest' : 'tag';
      if (kind === 'digest' && options.tag === true) {
        process.stderr.write('pullgate: cache rm: --tag needs a tag, not a digest\n');
        process.exitCode = 2;
        return;
      }
      return withCache(options.config, async (store) => {
        const removal = await removeImage({ index: store.index, store: store.localStore }, { ...target, kind, reference }, { tagOnly: options.tag === true });
        if (!removal.found) {
          process.stderr.write(`pullgate: cache rm: ${target.registry}/${target.repository}${kind === 'tag' ? ':' : '@'}${reference} is not cached\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`${removalReport(ref, removal, config.cache.tagTtlMs).join('\n')}\n`);
      });
    });
}
