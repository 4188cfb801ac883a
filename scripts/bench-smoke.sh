#!/usr/bin/env bash
# A seconds-long run of every benchmark so CI notices when one breaks. Figures from it are not
# recorded (BENCH_SMOKE=1 keeps bench/results/ untouched) and mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SMOKE=1
npx tsx bench/frame-decode.ts --messages 20000
npx tsx bench/record-batch.ts --messages 20000
npx tsx bench/crc32c.ts --rounds 1 --mb 8
npx tsx bench/storage.ts --mb 8 --seconds 0.3
npx tsx bench/record-validate.ts --messages 20000 --rounds 1
npx tsx bench/open-files.ts --segments 50 --reads 500
npx tsx bench/storage-hot-path.ts --appends 2000 --rounds 1
npx tsx bench/storage-inline-write.ts --writes 200 --rounds 1 --appends 500
npx tsx bench/wide-partitions.ts --partitions 200 --max-open-files 64
npx tsx bench/end-to-end.ts --messages 20000 --seconds 1 --rate 2000
npx tsx bench/tls.ts --messages 20000 --seconds 1 --rate 2000
npx tsx bench/metrics-overhead.ts --messages 5000 --rounds 1
npx tsx bench/metrics-cpu.ts --messages 20000 --scrapes 2
npx tsx bench/auth.ts --connections 3 --messages 5000 --rounds 1
npx tsx bench/authz.ts --rounds 1 --big-messages 20000 --small-messages 2000
npx tsx bench/authz.ts --profile --messages 40000
npx tsx bench/batch-api.ts --messages 20000 --rounds 1
npx tsx bench/recovery.ts --mb 16
npx tsx bench/partition-open.ts --mb 16 --rounds 1
npx tsx bench/latency-floor.ts --seconds 1 --rounds 1 --rate 2000
npx tsx bench/replication-floor.ts --seconds 1 --rate 2000
npx tsx bench/latency-stages.ts --transport tcp --seconds 1 --rate 2000
npx tsx bench/latency-stages.ts --transport embedded --seconds 1 --rate 2000
npx tsx bench/allocations.ts --seconds 1 --rate 2000 --top 5
npx tsx bench/job-floor.ts --seconds 1 --rate 2000 --spin-seconds 0.5 --work 2,10
npx tsx bench/page-faults.ts --mib 4 --requests 20000 --rounds 1
# The peer comparison without the peers (they are installed only by npm run bench:compare).
npx tsx bench/compare/run.ts --smoke --only limits,memorystreamer
echo "benchmark smoke: all benchmarks ran"
