import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { defaultDeps } from '../core/deps.js';

/** `pullgate doctor IMAGE [--config FILE]`: explain how IMAGE would be pulled; exit 0 only if pullable. */
export function registerDoctorCommand(program: Command, load: (file: string | undefined) => Config): void {
  program
    .command('doctor <image>')
    .description('explain, step by step, how IMAGE would be pulled (route, credentials, challenge, token, manifest)')
    .option('-c, --config <file>', 'config file (default: $PULLGATE_CONFIG, else the embedded config/pullgate.yaml)')
    .action(async (image: string, options: { config?: string }) => {
      let config: Config;
      try {
        config = load(options.config);
      } catch (err) {
        process.stderr.write(`pullgate: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(2);
      }
      // The doctor loads only now: the CLI's other commands start without it.
      const { runDoctor } = await import('../doctor/doctor.js');
      const deps = defaultDeps('silent');
      let pullable = false;
      try {
        pullable = await runDoctor(image, config, deps, (line) => process.stdout.write(`${line}\n`));
      } catch (err) {
        process.stderr.write(`pullgate: doctor: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(2);
      } finally {
        await deps.dispatcher.close();
      }
      process.exit(pullable ? 0 : 1);
    });
}
