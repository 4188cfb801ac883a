#!/usr/bin/env node
// Builds the optional native CRC-32C addon (native/crc32c) with node-gyp; run by npm as the package's
// postinstall, and by CI with --require. Prints one line: built, or not built and why. Without
// --require it always exits 0, because src/protocol/crc32c.ts falls back to @node-rs/crc32 when the
// addon is missing; with --require a failed build exits 1 (CI proves the addon builds).
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonDir = join(root, 'native', 'crc32c');
const output = join(addonDir, 'build', 'Release', 'memorystreamer_crc32c.node');
const required = process.argv.includes('--require');

function finish(built, message) {
  console.log(`native crc32c: ${built ? 'built' : 'not built'} (${message})`);
  process.exit(built || !required ? 0 : 1);
}

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

if (!existsSync(join(addonDir, 'binding.gyp'))) finish(false, 'native/crc32c/binding.gyp is missing');
const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) finish(false, 'node-gyp not found (npm_config_node_gyp, or npm beside node)');

const args = [nodeGyp, 'rebuild'];
// Headers: npm passes the user's nodedir through npm_config_nodedir; run directly, use the headers
// installed with this node (<prefix>/include/node) when present, so no download is needed.
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const result = spawnSync(process.execPath, args, { cwd: addonDir, encoding: 'utf8' });
if (result.status === 0 && existsSync(output))
  finish(true, 'native/crc32c/build/Release/memorystreamer_crc32c.node');
const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
// The reason: the compiler's first error if there is one, else node-gyp's first ERR! lines. The whole
// log goes to stderr with --require.
if (required) process.stderr.write(log);
const lines = log.split('\n');
const compilerError = lines.filter((line) => /\berror:/.test(line)).slice(0, 1);
const gypError = lines.filter((line) => /ERR!|not found/.test(line)).slice(0, 2);
const reason =
  result.error?.message ??
  (compilerError.length > 0 ? compilerError : gypError).join(' / ').replace(/\s+/g, ' ').slice(0, 300);
finish(false, `node-gyp exited ${result.status}: ${reason || 'no output'}`);
