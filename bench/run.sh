#!/usr/bin/env bash
# `npm run bench`: installs the peers if missing, builds pullgate, and runs the benchmark driver (bench/run.ts: a
# table of peers × measures). Figures go to stdout, bench/results.md and bench/charts/; progress to stderr.
# Tunables (environment):
#   BENCH_ONLY        comma list of measures (warm-blob, manifest-tag, manifest-digest, cold-pull, cold-pull-250m-40ms,
#                     fan-out, cluster-fan-out, warm-s3-tier, rss, growth, eviction), groups (warm, cold, wan, fanout, rss, growth,
#                     cluster: the two measures over three replicas and Ceph RGW) and/or peers; a subset writes
#                     bench/results.partial.md instead. Peers (bench/peers/types.ts PEER_NAMES):
#                       pullgate      `serve` exactly as `npm start` runs it: the start script's node flags, no --workers
#                                     (a primary and one worker per usable core)
#                       pullgate-1w   `serve --workers 1`: one process (RSS, growth and eviction figures are per process)
#                       nginx         worker_processes auto (one worker per core)
#                       node          node:http alone, one process     node-cores  the same, one process per core
#                       distribution  distribution's registry in proxy mode   direct  the upstream itself
#                     CPU figures are of a peer's whole process tree (its pid and every live descendant)
#   BENCH_REPEAT      runs of each wrk figure and start-up (3); tables show the median and min–max
#   BENCH_WRK_SECONDS length of one wrk run (4)      BENCH_COLD_REPS   cold pulls per peer and link (3)
#   BENCH_LINKS       shaped links for the wan cold pulls, "MBIT,RTT_MS;..." (default "250,40;1000,10")
#   BENCH_GROWTH_ROWS blob rows of the synthetic indexes (10000,100000,1000000)
#   BENCH_SMALL=1     smoke sizes (small blobs, 1 s wrk, 1 cold pull, indexes of 1k and 10k rows): checks the table works
#   BENCH_DEADLINE_SECONDS (1500; the driver cleans up and exits 124 past it), PULLGATE_NODE_ARGS (e.g. --cpu-prof)
set -euo pipefail
cd "$(dirname "$0")/.."

bash bench/install-bench-deps.sh
npm run build

# A second, outer bound in case the driver itself hangs: timeout signals the whole process group.
exec timeout --kill-after=30s 1600s npx tsx bench/run.ts "$@"
