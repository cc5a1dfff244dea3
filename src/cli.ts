#!/usr/bin/env node
// deps.js (and with it undici, the upstream client) is imported here, with the program, not on demand in the
// serve action like the server's other modules: imported on demand, a cold pull through a fresh process took
// about 10% more CPU (CPU ratio to distribution's proxy in `BENCH_ONLY=cold-pull`, builds alternating, runs of
// 10 pulls: 0.88 and 0.88 against 0.96 and 1.01; the cause was not found). It costs every command about 0.1 s
// of start (`cache stats` at 1M rows, 5 runs each, alternating: median 0.70 -> 0.82 s).
import { defaultDeps } from './core/deps.js';
import { Command } from 'commander';
import { parseListen, configPath, loadConfigFile } from './config/load.js';
import { renderConfig } from './config/mask.js';
import { endpointOrder } from './config/endpoint-order.js';
import { configWarnings } from './config/warnings.js';
import { exposureWarnings } from './access/exposure.js';
import { policyTable, resolveAccess } from './access/resolve.js';
import type { Config } from './config/config.js';
import { ConfigError } from './core/errors.js';
import { createLogger } from './core/logging.js';
import path from 'node:path';
import { registerCacheCommands } from './cli/cache-commands.js';
import { registerHostsCommand } from './cli/hosts-command.js';
import { registerHealthCommand } from './cli/health-command.js';
import { registerDoctorCommand } from './cli/doctor-command.js';
import { registerWarmCommand } from './cli/warm-command.js';
import { registerBundleCommands } from './cli/bundle-commands.js';
import { exitQuietlyWhenStdoutCloses } from './cli/stdout-closed.js';
import { VERSION } from './core/version.js';
import { builtAndWaitForListen, runPrimary, tellPrimaryListening, workerConfig, workerPlan } from './cli/workers.js';
import { printStartSummary } from './cli/start-summary.js';
import { WorkerMetrics } from './cli/worker-metrics.js';
import { WorkerTokens } from './cli/worker-tokens.js';
import { WorkerStatus } from './cli/worker-status.js';
import { chooseWorkers } from './cli/worker-count.js';

function load(file: string | undefined): Config {
  return loadConfigFile(configPath(file, process.env), process.env);
}

function fail(err: unknown): never {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
  process.stderr.write(`pullgate: ${message}\n`);
  process.exit(2);
}

exitQuietlyWhenStdoutCloses();

const program = new Command('pullgate').description('authenticating pull-through mirror for OCI and Docker registries').version(VERSION);

program
  .command('serve')
  .description('run the mirror')
  .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
  .option('--listen <host:port>', 'override listen')
  .option('--storage <dir>', 'override storage.path')
  .option('--workers <n>', 'processes serving the same port and storage; each digest is filled by one of them (default: one per usable core with local storage and no cluster:, else 1)')
  .action(async (options: { config?: string; listen?: string; storage?: string; workers?: string }) => {
    let config: Config;
    try {
      config = load(options.config);
      if (options.listen !== undefined) config.listen = parseListen(options.listen);
      if (options.storage !== undefined) config.storage.path = path.resolve(options.storage);
    } catch (err) {
      fail(err);
    }
    try {
      const plan = workerPlan(process.env);
      // A worker's count was chosen by its primary; otherwise this process chooses it.
      const choice = plan === undefined ? chooseWorkers(options.workers, config) : undefined;
      if (choice !== undefined && choice.workers > 1) {
        // The primary only forks and supervises: it does not load the server.
        const facts = { workers: choice.workers, workersReason: choice.reason };
        runPrimary(config, choice, createLogger(config.log.level), () => printStartSummary(process.stdout, config, facts));
        return;
      }
      // The server (fastify and the routes) loads only in a process that serves: the CLI's other commands,
      // and a primary, start without it.
      const { serve } = await import('./app/server.js');
      if (plan === undefined) {
        await serve(config, defaultDeps(config.log.level), { startup: { workers: 1, workersReason: choice?.reason } });
        printStartSummary(process.stdout, config, { workers: 1, workersReason: choice?.reason });
        return;
      }
      const deps = defaultDeps(config.log.level);
      deps.logger = deps.logger.child({ worker: plan.index });
      // Tokens come from the primary, fetched once for every worker.
      deps.hostTokens = new WorkerTokens();
      await serve(workerConfig(config, plan), deps, {
        beforeListen: builtAndWaitForListen,
        // Request ids count per process: the worker's index keeps them unique on the host.
        requestIdPrefix: `w${plan.index}-`,
        keepTemps: plan.replacement === true,
        hostMetrics: (registry) => {
          const host = new WorkerMetrics(registry);
          return () => host.text();
        },
        hostStatus: (collector) => {
          const host = new WorkerStatus(() => collector.processFacts());
          collector.joinHost(`worker-${plan.index}`, host.gather);
        },
      });
      tellPrimaryListening();
    } catch (err) {
      fail(err);
    }
  });

const configCommand = program.command('config').description('inspect the configuration');
configCommand
  .command('check [file]')
  .description('validate and print the resolved config, secrets masked')
  .action((file: string | undefined) => {
    try {
      const config = load(file);
      process.stdout.write(`# ${config.source}: valid\n`);
      for (const name of config.unsetVariables) process.stdout.write(`# warning: \${${name}} is unset and has no default\n`);
      for (const warning of configWarnings(config)) process.stdout.write(`# warning: ${warning}\n`);
      for (const warning of exposureWarnings(config)) process.stdout.write(`# WARNING: ${warning}\n`);
      for (const line of endpointOrder(config)) process.stdout.write(`# ${line}\n`);
      process.stdout.write(renderConfig(config));
      process.stdout.write(policyTable(config, resolveAccess(config)));
    } catch (err) {
      fail(err);
    }
  });

registerCacheCommands(program, load);
registerHostsCommand(program, load);
registerHealthCommand(program, load);
registerDoctorCommand(program, load);
registerWarmCommand(program, load);
registerBundleCommands(program, load);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail(err);
}
