#!/usr/bin/env node
// Builds the optional native addons with node-gyp; run by npm as the package's postinstall, and by CI
// with --require. Prints one line per addon: built, not built and why, or skipped on this platform.
//   native/crc32c  CRC-32C (docs/native-crc32c.md); src/protocol/crc32c.ts falls back to @node-rs/crc32
//   native/memory  glibc malloc_trim/mallopt (docs/native-memory.md), glibc Linux only;
//                  src/common/native-memory.ts falls back to doing nothing
// Without --require it always exits 0, because both loaders fall back when an addon is missing; with
// --require a failed build of an addon meant for this platform exits 1 (CI proves they build).
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const required = process.argv.includes('--require');

/** The glibc version this node runs against, or null (musl, macOS, Windows). */
function glibcVersion() {
  if (process.platform !== 'linux') return null;
  const header = process.report?.getReport?.().header;
  return typeof header?.glibcVersionRuntime === 'string' ? header.glibcVersionRuntime : null;
}

const addons = [
  { name: 'crc32c', target: 'memorystreamer_crc32c', skip: null },
  {
    name: 'memory',
    target: 'memorystreamer_memory',
    skip: glibcVersion() === null ? 'needs glibc Linux (malloc_trim, mallopt)' : null,
  },
];

/** node-gyp: the one npm runs us with, else the copy bundled with npm next to its CLI. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  // npm's CLI beside this node: <prefix>/bin/npm -> <prefix>/lib/node_modules/npm/bin/npm-cli.js.
  const prefix = join(dirname(process.execPath), '..');
  candidates.push(
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const npm = join(dir, 'npm');
    if (!dir || !existsSync(npm)) continue;
    try {
      const cli = realpathSync(npm);
      candidates.push(join(dirname(cli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      // A dangling link: try the next directory.
    }
  }
  return candidates.find((path) => existsSync(path));
}

/** Builds one addon; returns whether it is in place (or need not be: skipped on this platform). */
function build({ name, target, skip }) {
  const report = (state, message) => console.log(`native ${name}: ${state} (${message})`);
  if (skip !== null) {
    report('skipped', skip);
    return true;
  }
  const addonDir = join(root, 'native', name);
  const output = join(addonDir, 'build', 'Release', `${target}.node`);
  if (!existsSync(join(addonDir, 'binding.gyp'))) {
    report('not built', `native/${name}/binding.gyp is missing`);
    return false;
  }
  if (nodeGyp === undefined) {
    report('not built', 'node-gyp not found (npm_config_node_gyp, or npm beside node)');
    return false;
  }
  const args = [nodeGyp, 'rebuild'];
  // Headers: npm passes the user's nodedir through npm_config_nodedir; run directly, use the headers
  // installed with this node (<prefix>/include/node) when present, so no download is needed.
  const prefix = join(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  const result = spawnSync(process.execPath, args, { cwd: addonDir, encoding: 'utf8' });
  if (result.status === 0 && existsSync(output)) {
    report('built', `native/${name}/build/Release/${target}.node`);
    return true;
  }
  const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  // The reason: the compiler's first error if there is one, else node-gyp's first ERR! lines. The
  // whole log goes to stderr with --require.
  if (required) process.stderr.write(log);
  const lines = log.split('\n');
  const compilerError = lines.filter((line) => /\berror:/.test(line)).slice(0, 1);
  const gypError = lines.filter((line) => /ERR!|not found/.test(line)).slice(0, 2);
  const reason =
    result.error?.message ??
    (compilerError.length > 0 ? compilerError : gypError).join(' / ').replace(/\s+/g, ' ').slice(0, 300);
  report('not built', `node-gyp exited ${result.status}: ${reason || 'no output'}`);
  return false;
}

const nodeGyp = findNodeGyp();
let allBuilt = true;
for (const addon of addons) allBuilt = build(addon) && allBuilt;
process.exit(allBuilt || !required ? 0 : 1);
