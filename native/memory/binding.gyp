{
  # Built by scripts/build-native.mjs (npm postinstall) on glibc Linux only: malloc_trim and mallopt
  # are glibc functions. Plain C against Node-API only, so the .node file is ABI-stable across Node
  # versions. See docs/native-memory.md.
  "targets": [
    {
      "target_name": "memorystreamer_memory",
      "sources": ["memory.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
