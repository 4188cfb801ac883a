// CRC-32C (Castagnoli) as a small Node-API addon, for the storage read path: every record batch read
// back is verified, and @node-rs/crc32 verifies at 3-4 GB/s where the CPU's own crc32 instruction
// reaches 20+ GB/s when three independent chains keep it busy. Optional: src/protocol/crc32c.ts falls
// back to @node-rs/crc32 when this module is missing or reports `hardware: false`.
//
// Method (docs/native-crc32c.md):
//   - The SSE4.2 crc32 instruction has a latency of ~3 cycles but can start one per cycle, so a single
//     dependent chain uses a third of it. Long inputs are cut into rounds of three equal consecutive
//     blocks of L bytes, checksummed as three independent chains (A continues the running CRC, B and
//     C start from 0) and then joined: the raw CRC register (no pre/post inversion) is linear, so
//     running block 2 from A instead of 0 gives B ^ shift_L(A), where shift_L(x) is the register x
//     after L zero bytes; likewise for block 3. Result of a round: shift_L(shift_L(A) ^ B) ^ C.
//   - shift_L is a linear map on 32 bits, stored as four 256-entry tables (one per register byte).
//     They are derived at load time with the instruction itself: the image of each of the 32 basis
//     registers (1 << bit) after L zero bytes, and each table entry is the XOR of the images of the
//     bits set in its byte.
//   - Four block sizes, 4096, 1024, 256 and 64 bytes: rounds of the largest while they fit, then of
//     the next for what is left, and so on; the last < 192 bytes run as one chain, 8 bytes at a time,
//     then byte by byte. (With two sizes, 4096 and 256, up to 767 bytes ran as one chain: inputs of
//     1-5 KiB were 10-30% slower; measured with a C harness on the machine of docs/native-crc32c.md.)
// Only the x86-64 functions carry target("sse4.2"), chosen at runtime by __builtin_cpu_supports, so
// the file compiles without -msse4.2 and loads on any x86-64. Elsewhere a byte-table loop keeps the
// exported functions correct, and `hardware: false` tells the loader to prefer @node-rs/crc32.

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

// The CRC-32C polynomial 0x1EDC6F41, bit-reflected (the crc32 instruction and @node-rs/crc32 use the
// reflected form: least significant bit first).
#define POLY_REFLECTED 0x82f63b78u

// ---------------------------------------------------------------------------------------------------
// Portable path: one 256-entry table, one byte per step. Used only without SSE4.2.

static uint32_t byte_table[256];

static void init_byte_table(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? POLY_REFLECTED ^ (c >> 1) : c >> 1;
    byte_table[n] = c;
  }
}

/** Raw register update (no inversion) over n bytes. */
static uint32_t update_portable(uint32_t c, const uint8_t *p, size_t n) {
  while (n--) c = byte_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c;
}

// ---------------------------------------------------------------------------------------------------
// x86-64 path.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_CRC 1
#include <nmmintrin.h>

// Bytes per chain in one round, largest first. BLOCK_0: large enough that joining the chains (8 table
// lookups) is a percent or two of the round; each smaller size takes what the one above leaves over.
#define BLOCK_0 4096
#define BLOCK_1 1024
#define BLOCK_2 256
#define BLOCK_3 64

// shift_tables[level][k][b]: the register whose byte k is b (other bytes 0) after BLOCK_level zero bytes.
static uint32_t shift_tables[4][4][256];

static uint32_t shift(const uint32_t table[4][256], uint32_t c) {
  return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^ table[2][(c >> 16) & 0xff] ^ table[3][c >> 24];
}

__attribute__((target("sse4.2"))) static void build_shift_table(uint32_t table[4][256], size_t zeros) {
  // The image of each basis register after `zeros` zero bytes (zeros is a multiple of 8).
  uint32_t image[32];
  for (int bit = 0; bit < 32; bit++) {
    uint64_t c = (uint64_t)1 << bit;
    for (size_t i = 0; i < zeros; i += 8) c = _mm_crc32_u64(c, 0);
    image[bit] = (uint32_t)c;
  }
  // shift is linear, so the image of any register is the XOR of the images of its set bits.
  for (int k = 0; k < 4; k++) {
    for (int b = 0; b < 256; b++) {
      uint32_t v = 0;
      for (int j = 0; j < 8; j++) {
        if ((b >> j) & 1) v ^= image[8 * k + j];
      }
      table[k][b] = v;
    }
  }
}

/** Rounds of three chains of `block` bytes each, while at least 3 * block bytes remain. */
__attribute__((target("sse4.2"))) static uint32_t rounds_sse42(uint32_t crc, const uint8_t **at, size_t *left,
                                                               size_t block, const uint32_t table[4][256]) {
  const uint8_t *p = *at;
  size_t n = *left;
  while (n >= 3 * block) {
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < block; i += 8) {
      uint64_t x, y, z;
      memcpy(&x, p + i, 8);  // memcpy: unaligned loads, compiled to plain moves
      memcpy(&y, p + block + i, 8);
      memcpy(&z, p + 2 * block + i, 8);
      a = _mm_crc32_u64(a, x);
      b = _mm_crc32_u64(b, y);
      c = _mm_crc32_u64(c, z);
    }
    crc = shift(table, shift(table, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
    p += 3 * block;
    n -= 3 * block;
  }
  *at = p;
  *left = n;
  return crc;
}

__attribute__((target("sse4.2"))) static uint32_t update_sse42(uint32_t crc, const uint8_t *p, size_t n) {
  crc = rounds_sse42(crc, &p, &n, BLOCK_0, shift_tables[0]);
  crc = rounds_sse42(crc, &p, &n, BLOCK_1, shift_tables[1]);
  crc = rounds_sse42(crc, &p, &n, BLOCK_2, shift_tables[2]);
  crc = rounds_sse42(crc, &p, &n, BLOCK_3, shift_tables[3]);
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
  return (uint32_t)c;
}
#endif

// ---------------------------------------------------------------------------------------------------
// Backend choice, made once when the module is first initialised.

static int hardware = 0;
static int initialised = 0;

static void init_backend(void) {
  if (initialised) return;  // see init_at_load
  init_byte_table();
#ifdef HAVE_X86_CRC
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) {
    build_shift_table(shift_tables[0], BLOCK_0);
    build_shift_table(shift_tables[1], BLOCK_1);
    build_shift_table(shift_tables[2], BLOCK_2);
    build_shift_table(shift_tables[3], BLOCK_3);
    hardware = 1;
  }
#endif
  initialised = 1;
}

#if defined(__GNUC__) || defined(__clang__)
// Worker threads each initialise the module in their own environment, possibly at the same time;
// initialising at load time (once per process, under the dynamic loader's lock) keeps them from
// writing the tables concurrently. NAPI_MODULE_INIT still calls init_backend for other compilers.
__attribute__((constructor)) static void init_at_load(void) { init_backend(); }
#endif

/** Standard CRC-32C of p[0..n) continuing from `initial` (a finished CRC: pre/post inversion). */
static uint32_t crc32c(uint32_t initial, const uint8_t *p, size_t n) {
  uint32_t c = ~initial;
#ifdef HAVE_X86_CRC
  if (hardware) return ~update_sse42(c, p, n);
#endif
  return ~update_portable(c, p, n);
}

// ---------------------------------------------------------------------------------------------------
// Node-API glue.

#define CALL(env, expr)                                                                              \
  do {                                                                                               \
    if ((expr) != napi_ok) {                                                                         \
      const napi_extended_error_info *info = NULL;                                                   \
      napi_get_last_error_info((env), &info);                                                        \
      bool pending = false;                                                                          \
      napi_is_exception_pending((env), &pending);                                                    \
      if (!pending)                                                                                  \
        napi_throw_error((env), NULL,                                                                \
                         info && info->error_message ? info->error_message : "Node-API call failed"); \
      return NULL;                                                                                   \
    }                                                                                                \
  } while (0)

/** The bytes of a Uint8Array (Buffer included); data already points at its byteOffset. */
static bool get_bytes(napi_env env, napi_value value, const uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32c: data must be a Uint8Array or Buffer");
    return false;
  }
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32c: data must be a Uint8Array or Buffer");
    return false;
  }
  // A zero-length view may report a NULL data pointer; nothing is read from it then.
  *data = (const uint8_t *)raw;
  return true;
}

/** `initial`: undefined means 0; a number is taken modulo 2^32 (as @node-rs/crc32 does). */
static bool get_initial(napi_env env, napi_value value, uint32_t *initial) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) {
    *initial = 0;
    return true;
  }
  if (type != napi_number || napi_get_value_uint32(env, value, initial) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "crc32c: initial must be a number");
    return false;
  }
  return true;
}

/** A byte position: an integer in [0, limit]. */
static bool get_position(napi_env env, napi_value value, size_t limit, const char *name, size_t *out) {
  napi_valuetype type;
  double d = 0;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_double(env, value, &d) != napi_ok || !(d >= 0) || d > (double)limit ||
      d != (double)(size_t)d) {
    char message[96];
    snprintf(message, sizeof message, "crc32cRange: %s must be an integer in [0, %zu]", name, limit);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = (size_t)d;
  return true;
}

// crc32c(data: Uint8Array, initial?: number): number
static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  // Missing arguments come back as undefined (napi_get_cb_info fills argv up to its size).
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const uint8_t *data;
  size_t length;
  uint32_t initial;
  if (!get_bytes(env, argv[0], &data, &length) || !get_initial(env, argv[1], &initial)) return NULL;
  napi_value result;
  CALL(env, napi_create_uint32(env, crc32c(initial, data, length), &result));
  return result;
}

// crc32cRange(data: Uint8Array, start: number, end: number, initial?: number): number
static napi_value js_crc32c_range(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const uint8_t *data;
  size_t length, start, end;
  uint32_t initial;
  if (!get_bytes(env, argv[0], &data, &length) || !get_position(env, argv[1], length, "start", &start) ||
      !get_position(env, argv[2], length, "end", &end)) {
    return NULL;
  }
  if (end < start) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "crc32cRange: end must not be less than start");
    return NULL;
  }
  if (!get_initial(env, argv[3], &initial)) return NULL;
  napi_value result;
  CALL(env, napi_create_uint32(env, crc32c(initial, length == 0 ? data : data + start, end - start), &result));
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  init_backend();
  napi_property_descriptor properties[3];
  memset(properties, 0, sizeof properties);
  properties[0].utf8name = "crc32c";
  properties[0].method = js_crc32c;
  properties[0].attributes = napi_enumerable;
  properties[1].utf8name = "crc32cRange";
  properties[1].method = js_crc32c_range;
  properties[1].attributes = napi_enumerable;
  properties[2].utf8name = "hardware";
  CALL(env, napi_get_boolean(env, hardware != 0, &properties[2].value));
  properties[2].attributes = napi_enumerable;
  CALL(env, napi_define_properties(env, exports, 3, properties));
  return exports;
}
