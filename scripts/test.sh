#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the real peers (Debian packages) and the npm
# dependencies, builds, type-checks, lints, then runs unit + integration tests and the real-peer
# e2e suite. Ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
if ! npm ls --depth=0 >/dev/null 2>&1; then npm ci --no-audit --no-fund; fi
npm run build
npm run typecheck
npm run lint

out=$(mktemp -d)
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$out/unit.json" || status=$?
npx vitest run --config vitest.e2e.config.ts --reporter=default --reporter=json --outputFile="$out/e2e.json" || status=$?
node scripts/summarize-tests.mjs "$out/unit.json" "$out/e2e.json" || status=$?
rm -rf "$out"
exit "$status"
