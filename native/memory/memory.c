// glibc malloc controls for src/common/native-memory.ts (docs/native-memory.md).
//
// Node allocates the backing store of every Buffer and ArrayBuffer with malloc. glibc serves
// requests below its mmap threshold (128 KiB at start, raised up to 32 MiB each time a larger mmapped
// chunk is freed) from its arenas, and when those chunks are freed it keeps the pages: only the top
// of the main heap is returned, and only above M_TRIM_THRESHOLD. After a burst of socket reads
// (chunks of up to 64 KiB) the broker's RSS therefore stays where the burst left it even though
// nothing is held any more. malloc_trim(0) walks every arena and gives back (madvise
// MADV_DONTNEED) all whole free pages, wherever they are in the heap.
//
// Exports:
//   trim(): boolean                    malloc_trim(0) on the calling thread; true when some memory
//                                      was returned
//   trimAsync(): Promise<boolean>      the same on a libuv pool thread: the walk over the arenas
//                                      (tens of ms with 200 MiB free) does not stop the event loop
//   setMallocOption(name, value): boolean   mallopt(M_MMAP_THRESHOLD | M_TRIM_THRESHOLD, value);
//                                      name is "mmapThreshold" or "trimThreshold"; false when
//                                      glibc refused the value
//   freeBytes(): number                bytes in free chunks of all arenas (mallinfo2 fordblks),
//                                      -1 where glibc is older than 2.33
//   glibcVersion: string               the glibc the addon runs against (gnu_get_libc_version)

#include <limits.h> // any libc header: on glibc it brings <features.h>, which defines __GLIBC__
#if !defined(__GLIBC__)
#error "memorystreamer_memory needs glibc (malloc_trim, mallopt); the loader falls back without it"
#endif

#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(napi_get_boolean(env, malloc_trim(0) == 1, &result));
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int returned;
} TrimJob;

static void TrimExecute(napi_env env, void *data) {
  (void)env;
  TrimJob *job = data;
  job->returned = malloc_trim(0) == 1;
}

static void TrimComplete(napi_env env, napi_status status, void *data) {
  TrimJob *job = data;
  napi_value result;
  if (status == napi_ok && napi_get_boolean(env, job->returned, &result) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, "malloc_trim did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value TrimAsync(napi_env env, napi_callback_info info) {
  (void)info;
  TrimJob *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "trimAsync: out of memory");
    return NULL;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "memorystreamer:malloc_trim", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, TrimExecute, TrimComplete, job, &job->work) != napi_ok) {
    free(job);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    free(job);
    return NULL;
  }
  return promise;
}

static napi_value SetMallocOption(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[32];
  size_t length = 0;
  int64_t value = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) != napi_ok ||
      napi_get_value_int64(env, argv[1], &value) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "setMallocOption(name: string, value: number) expected");
    return NULL;
  }
  int option;
  if (strcmp(name, "mmapThreshold") == 0) option = M_MMAP_THRESHOLD;
  else if (strcmp(name, "trimThreshold") == 0) option = M_TRIM_THRESHOLD;
  else {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "setMallocOption: name must be \"mmapThreshold\" or \"trimThreshold\"");
    return NULL;
  }
  if (value < 0 || value > 0x7fffffff) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "setMallocOption: value must be an integer in [0, 2^31 - 1]");
    return NULL;
  }
  napi_value result;
  CHECK(napi_get_boolean(env, mallopt(option, (int)value) == 1, &result));
  return result;
}

static napi_value FreeBytes(napi_env env, napi_callback_info info) {
  (void)info;
  double free_bytes = -1;
#if __GLIBC_PREREQ(2, 33)
  struct mallinfo2 stats = mallinfo2();
  free_bytes = (double)stats.fordblks;
#endif
  napi_value result;
  CHECK(napi_create_double(env, free_bytes, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value version;
  CHECK(napi_create_string_utf8(env, gnu_get_libc_version(), NAPI_AUTO_LENGTH, &version));
  napi_property_descriptor properties[] = {
      {"trim", NULL, Trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimAsync", NULL, TrimAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMallocOption", NULL, SetMallocOption, NULL, NULL, NULL, napi_enumerable, NULL},
      {"freeBytes", NULL, FreeBytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"glibcVersion", NULL, NULL, NULL, NULL, version, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties));
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
