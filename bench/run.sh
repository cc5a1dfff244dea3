#!/usr/bin/env bash
# `npm run bench`: installs the peers if missing, builds pullgate, and runs the benchmark driver (bench/run.ts).
# Figures go to stdout and bench/results.md; progress to stderr. Tunables (environment): BENCH_WRK_SECONDS (10),
# BENCH_COLD_REPS (3), BENCH_DEADLINE_SECONDS (570; the driver cleans up and exits 124 past it), BENCH_ONLY
# (warm,cold,wan,fanout,rss: a subset, written to bench/results.partial.md), BENCH_LINKS (shaped links for the
# wan cold pulls, "MBIT,RTT_MS;...", default "250,40;1000,10"), PULLGATE_NODE_ARGS (e.g. --cpu-prof).
set -euo pipefail
cd "$(dirname "$0")/.."

bash bench/install-bench-deps.sh
npm run build

# A second, outer bound in case the driver itself hangs: timeout signals the whole process group.
exec timeout --kill-after=30s 660s npx tsx bench/run.ts "$@"
