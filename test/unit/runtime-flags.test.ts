import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { minorCollection } from '../../src/core/runtime-flags.js';
import { createLogger } from '../../src/core/logging.js';
import { Metrics } from '../../src/core/metrics.js';
import { V8_FLAGS, missingV8Flags, reportRuntime, workerExecArgv } from '../../src/core/runtime-flags.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

async function refused(metrics: Metrics): Promise<number> {
  const found = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'pullgate_runtime_trick_refused_total');
  return found?.values.find((v) => v.labels.trick === 'minor-collection')?.value ?? 0;
}

describe('runtime settings', () => {
  it('finds the V8 flags missing from the command line and NODE_OPTIONS, and gives them to workers', () => {
    expect(missingV8Flags([], undefined)).toEqual([...V8_FLAGS]);
    expect(missingV8Flags(['--max-semi-space-size=4'], undefined)).toEqual([]);
    expect(missingV8Flags([], '--max-semi-space-size=2 --enable-source-maps')).toEqual([]);
    expect(workerExecArgv(['--import', 'tsx'], undefined)).toEqual(['--import', 'tsx', ...V8_FLAGS]);
    expect(workerExecArgv(['--max-semi-space-size=2'], undefined)).toEqual(['--max-semi-space-size=2']);
  });

  it('are the ones the image and npm start pass (one list, checked here so they cannot drift)', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const start = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start ?? '';
    for (const flag of V8_FLAGS) {
      expect(dockerfile).toContain(`"${flag}"`);
      expect(start).toContain(flag);
    }
  });

  it('take effect through a worker\'s exec arguments, where setting them after start does not', () => {
    // Allocates enough (keeping some) for V8 to grow the young generation to the most it allows.
    const probe =
      "const v8=require('node:v8');if(process.argv[1]==='late')v8.setFlagsFromString('--max-semi-space-size=2');const keep=[];for(let i=0;i<2e6;i++){const a={i,s:'x'+i};if(i%1000===0)keep.push(a)}console.log(v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space').space_size)";
    const size = (execArgv: string[], late = false): number => Number(spawnSync(process.execPath, [...execArgv, '-e', probe, late ? 'late' : 'no'], { encoding: 'utf8' }).stdout.trim());
    const withFlags = size(workerExecArgv([], undefined));
    const without = size([]);
    const late = size([], true);
    console.log(`runtime-flags: young generation ${withFlags / 2 ** 20} MiB with the worker exec arguments, ${without / 2 ** 20} MiB without, ${late / 2 ** 20} MiB set after start`);
    expect(withFlags).toBeLessThan(without);
    expect(late).toBe(without);
  });

  it('logs once and counts a refused minor collection, and says when the V8 flags are missing', async () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(line) });
    const metrics = new Metrics();
    reportRuntime(logger, metrics, { execArgv: [], nodeOptions: undefined, minorCollection: () => undefined });
    logger.flush();
    expect(lines.filter((line) => line.includes('"trick":"minor-collection"'))).toHaveLength(1);
    expect(lines.filter((line) => line.includes('--max-semi-space-size=2 dist/cli.js serve'))).toHaveLength(1);
    expect(await refused(metrics)).toBe(1);

    const quiet: string[] = [];
    const ok = new Metrics();
    reportRuntime(createLogger('info', { write: (line: string) => quiet.push(line) }), ok, { execArgv: [...V8_FLAGS], nodeOptions: undefined, minorCollection: () => () => undefined });
    expect(quiet).toEqual([]);
    expect(await refused(ok)).toBe(0);
    // This runtime itself: which path it takes, said rather than skipped.
    if (minorCollection() === undefined) console.log('runtime-flags: this runtime refuses the minor-collection trick: the refusal path above is the one production would take here');
    else console.log('runtime-flags: this runtime grants the minor-collection trick: its refusal is exercised only with the injected probe above');
  });
});
