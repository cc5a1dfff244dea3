import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runOk } from '../../support/proc.js';
import { REPO_ROOT } from '../../support/pullgate.js';

describe('the buffered stdout log (built pullgate)', () => {
  it('writes every line whole, multi-byte characters intact, and flushes what is buffered when the process exits', async () => {
    const logging = pathToFileURL(join(REPO_ROOT, 'dist', 'core', 'logging.js')).href;
    // More lines than one buffered write holds (4 KiB), then a natural exit with lines still buffered.
    const script = [
      `const { createLogger } = await import(${JSON.stringify(logging)});`,
      "const log = createLogger('info');",
      "log.info({ repository: 'équipe/café', tag: '✓' }, 'naïve');",
      "for (let i = 0; i < 2000; i += 1) log.info({ i }, 'line');",
    ].join('\n');
    const result = await runOk(process.execPath, ['--input-type=module', '-e', script]);
    const lines = result.stdout.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(2001);
    const records = lines.map((line) => JSON.parse(line) as { msg: string; i?: number; repository?: string; tag?: string });
    expect(records[0]).toMatchObject({ msg: 'naïve', repository: 'équipe/café', tag: '✓' });
    expect(records.slice(1).map((r) => r.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});
