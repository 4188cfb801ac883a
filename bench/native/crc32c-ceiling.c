// The CPU's own CRC-32C ceiling, for docs/storage.md ("Reads"): how fast the SSE4.2 crc32
// instruction checksums 1 MiB, as one dependent chain (what a simple loop does) and as three
// independent chains (what a tuned implementation does before combining the three CRCs; the combine
// step is left out, so this is an upper bound). Not part of the package: it tells how much of the
// replay gap a native CRC of our own could close.
//
// Run: gcc -O2 -msse4.2 bench/native/crc32c-ceiling.c -o /tmp/crc32c-ceiling && /tmp/crc32c-ceiling
#include <nmmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint32_t one_chain(const uint8_t *p, size_t n) {
  uint64_t c = 0xffffffffu;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
  return ~(uint32_t)c;
}

static uint32_t three_chains(const uint8_t *p, size_t n) {
  size_t third = n / 3 / 8 * 8;
  uint64_t a = 0xffffffffu, b = 0, c = 0;
  for (size_t i = 0; i < third; i += 8) {
    uint64_t x, y, z;
    memcpy(&x, p + i, 8);
    memcpy(&y, p + third + i, 8);
    memcpy(&z, p + 2 * third + i, 8);
    a = _mm_crc32_u64(a, x);
    b = _mm_crc32_u64(b, y);
    c = _mm_crc32_u64(c, z);
  }
  return (uint32_t)(a ^ b ^ c);
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
  const size_t size = 1 << 20;
  const int reps = 2000;
  uint8_t *buf = malloc(size);
  for (size_t i = 0; i < size; i++) buf[i] = (uint8_t)(i * 31);
  volatile uint32_t sink = 0;
  for (int round = 1; round <= 3; round++) {
    double t0 = seconds();
    for (int i = 0; i < reps; i++) sink ^= one_chain(buf, size);
    double t1 = seconds();
    for (int i = 0; i < reps; i++) sink ^= three_chains(buf, size);
    double t2 = seconds();
    printf("round %d: one chain %.2f GB/s, three chains %.2f GB/s\n", round, reps / 1024.0 / (t1 - t0),
           reps / 1024.0 / (t2 - t1));
  }
  free(buf);
  return sink == 0x12345678;
}
