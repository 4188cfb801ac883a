#!/usr/bin/env bash
# A seconds-long run of every benchmark so CI notices when one breaks. Figures from it are not
# recorded (BENCH_SMOKE=1 keeps bench/results/ untouched) and mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SMOKE=1
npx tsx bench/frame-decode.ts --messages 20000
npx tsx bench/record-batch.ts --messages 20000
npx tsx bench/storage.ts --mb 8 --seconds 0.3
npx tsx bench/end-to-end.ts --messages 20000 --seconds 1 --rate 2000
echo "benchmark smoke: all benchmarks ran"
