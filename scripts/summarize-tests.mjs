// Prints one "tests: N passed, N failed, N skipped" line from vitest JSON reports; exits 1 if none ran.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
let failedSuites = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.error(`summarize-tests: ${file} missing (that suite did not run)`);
    failed++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  // A test file that fails outside its tests (a hook timing out, an import error) fails no test but fails the run.
  failedSuites += (report.testResults ?? []).filter((r) => r.status === 'failed' && !(r.assertionResults ?? []).some((a) => a.status === 'failed')).length;
  skipped += report.numPendingTests + report.numTodoTests;
}
const suites = failedSuites > 0 ? `, ${failedSuites} file${failedSuites === 1 ? '' : 's'} failed outside a test` : '';
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped${suites}`);
process.exit(failed > 0 || failedSuites > 0 || passed === 0 ? 1 : 0);
