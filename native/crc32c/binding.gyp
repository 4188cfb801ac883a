{
  # Built by scripts/build-native.mjs (npm postinstall). Plain C against Node-API only: the .node file
  # is ABI-stable across Node versions (built with Node 20, loaded by Node 24 too). No -msse4.2 here on
  # purpose: only the SSE4.2 functions carry target("sse4.2"), chosen at runtime.
  "targets": [
    {
      "target_name": "memorystreamer_crc32c",
      "sources": ["crc32c.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3"] }
    }
  ]
}
