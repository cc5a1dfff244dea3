import type { Command } from 'commander';
import { Cache } from '../cache/cache.js';
import { cacheStats, pruneShared, verifyCache } from '../cache/maintenance.js';
import { sharedTierFor } from '../cache/shared-tier.js';
import type { Config } from '../config/config.js';
import { formatSize, parseSize } from '../config/units.js';
import { createLogger, systemClock } from '../deps.js';
import { Metrics } from '../metrics.js';

function openCache(config: Config, level = 'warn'): Cache {
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

function when(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

/** `pullgate cache stats|ls|prune|verify`: inspect and maintain the cache of a config. */
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
      withCache(options.config, async (store) => {
        const index = store.contentIndex;
        const rows = [];
        for await (const row of index.blobs('digest')) rows.push(row);
        rows.sort((a, b) => b.last_access - a.last_access);
        process.stdout.write('DIGEST\tKIND\tSIZE\tLAST ACCESS\tREPOSITORIES\n');
        for (const row of rows) {
          const repos = (await index.linksOf(row.digest)).map((link) => `${link.registry}/${link.repository}`);
          process.stdout.write(`${row.digest}\t${row.kind}\t${formatSize(row.size)}\t${when(row.last_access)}\t${repos.join(',') || '-'}\n`);
        }
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
        const { evicted, freed } = store.evictTo(target);
        process.stdout.write(`evicted ${evicted} blobs, freed ${formatSize(freed)}; cache now ${formatSize(store.sizeBytes)}\n`);
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
}
