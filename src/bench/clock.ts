// One clock for every thread (and process) of the host: CLOCK_MONOTONIC, in milliseconds. A
// producer thread stamps messages with it and a consumer thread reads it, so the two must agree;
// performance.now() alone would not, as each thread counts from its own start. performance.now()
// runs on the same monotonic clock, so one offset measured per thread converts it cheaply.

function measureOffset(): number {
  let bestSpread = Number.POSITIVE_INFINITY;
  let offset = 0;
  // The pair of readings closest together gives the most exact offset.
  for (let i = 0; i < 7; i++) {
    const before = performance.now();
    const monotonic = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < bestSpread) {
      bestSpread = after - before;
      offset = monotonic - (before + after) / 2;
    }
  }
  return offset;
}

const offset = measureOffset();

/** Milliseconds on the host's monotonic clock (comparable across worker threads and processes). */
export function monotonicMs(): number {
  return performance.now() + offset;
}
