// Keeps the layers of the source tree honest (README, Development): every relative import in src/ is resolved to
// the top-level folder it lands in, and a folder may import only the folders below it. A new
// upward import fails the suite with the file, the line and the rule it breaks.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');
const ROOT = resolve(SRC, '..');

/** What each top-level folder of src/ may import besides itself. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  common: [],
  protocol: ['common'],
  // SCRAM, users and the rate limit of failures: below the broker and the client, which both use it.
  security: ['protocol', 'common'],
  storage: ['protocol', 'common'],
  metrics: ['common'],
  broker: ['security', 'storage', 'protocol', 'metrics', 'common'],
  // Brokers reach each other (replica fetch) through the client's TCP transport.
  cluster: ['broker', 'client', 'security', 'storage', 'protocol', 'metrics', 'common'],
  client: ['security', 'protocol', 'common'],
  // In-process running only: the embedded Broker API over a broker node, and its transport.
  embedded: ['broker', 'client', 'security', 'protocol', 'common'],
  // The tools: the CLI starts broker nodes and runs the load generator, which shares its option
  // parsers; the load generator may also run an embedded broker.
  bench: ['cli', 'embedded', 'broker', 'client', 'security', 'protocol', 'metrics', 'common'],
  cli: ['bench', 'broker', 'cluster', 'client', 'security', 'protocol', 'metrics', 'common'],
  '(root)': ['embedded', 'broker', 'client', 'security', 'protocol', 'metrics', 'common', 'cluster'],
};

/** Node modules a layer must not touch: the protocol is sans-IO, storage knows nothing of sockets. */
const FORBIDDEN_MODULES: Readonly<Record<string, readonly string[]>> = {
  protocol: [
    'node:net',
    'node:tls',
    'node:fs',
    'node:fs/promises',
    'node:child_process',
    'node:timers',
    'node:dgram',
  ],
  storage: ['node:net', 'node:tls', 'node:http', 'node:dgram'],
  client: ['node:fs', 'node:fs/promises', 'node:child_process'],
};

interface Import {
  file: string;
  line: number;
  specifier: string;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'fixtures') files.push(...sourceFiles(path));
    } else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

const IMPORT_PATTERN =
  /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const match of text.matchAll(IMPORT_PATTERN)) {
    const specifier = match[1] ?? match[2];
    if (specifier === undefined) continue;
    const at = match.index + match[0].indexOf(specifier);
    const line = text.slice(0, at).split('\n').length;
    found.push({ file, line, specifier });
  }
  return found;
}

function outsideSrc(path: string): boolean {
  return relative(SRC, path).startsWith('..');
}

function layerOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? '(root)' : parts[0]!;
}

function violations(): string[] {
  const problems: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (allowed === undefined) {
      problems.push(
        `${relative(SRC, file)}: folder src/${from} has no rule in test/architecture/layers.test.ts`,
      );
      continue;
    }
    for (const { line, specifier } of importsOf(file)) {
      const where = `src/${relative(SRC, file)}:${line}`;
      if (specifier.startsWith('.')) {
        const resolved = resolve(dirname(file), specifier);
        if (outsideSrc(resolved)) {
          problems.push(
            `${where} imports ${specifier}: src/ may not import ${relative(ROOT, resolved)} (tests, benchmarks and scripts use src/, never the other way)`,
          );
          continue;
        }
        const target = layerOf(resolved);
        if (target !== from && !allowed.includes(target))
          problems.push(`${where} imports ${specifier}: src/${from} may not import src/${target}`);
      } else if ((FORBIDDEN_MODULES[from] ?? []).includes(specifier)) {
        problems.push(`${where} imports ${specifier}: src/${from} may not use it`);
      }
    }
  }
  return problems;
}

describe('layers', () => {
  it('no folder of src/ imports a layer above it', () => {
    expect(violations()).toEqual([]);
  });

  it('finds an upward import when there is one', () => {
    // The check itself: a storage file that imports the broker must be reported.
    const text = "import { BrokerCore } from '../broker/broker-core.js';";
    const matches = [...text.matchAll(IMPORT_PATTERN)].map((m) => m[1]);
    expect(matches).toEqual(['../broker/broker-core.js']);
    expect(layerOf(resolve(SRC, 'storage', '../broker/broker-core.js'))).toBe('broker');
    expect(ALLOWED.storage).not.toContain('broker');
  });

  it('the broker is assembled below the embedded layer, which only entry points use', () => {
    // A broker node (src/broker/broker-node.ts) is what `serve` runs and what the embedded Broker
    // wraps: nothing under the broker may reach up into src/embedded, and the CLI starts nodes, not
    // embedded brokers.
    const users = Object.entries(ALLOWED)
      .filter(([, allowed]) => allowed.includes('embedded'))
      .map(([layer]) => layer)
      .sort();
    expect(users).toEqual(['(root)', 'bench']);
    const brokerImports = sourceFiles(join(SRC, 'broker')).flatMap((file) =>
      importsOf(file)
        .filter(
          (i) => i.specifier.startsWith('.') && layerOf(resolve(dirname(file), i.specifier)) === 'embedded',
        )
        .map((i) => `src/${relative(SRC, file)}:${i.line} imports ${i.specifier}`),
    );
    expect(brokerImports).toEqual([]);
  });

  it('the protocol layer does no I/O and sets no timers', () => {
    const timers: string[] = [];
    for (const file of sourceFiles(join(SRC, 'protocol'))) {
      const text = readFileSync(file, 'utf8');
      if (/\b(setTimeout|setInterval|setImmediate)\s*\(/.test(text)) timers.push(relative(SRC, file));
    }
    expect(timers).toEqual([]);
  });
});

/** Files of these top-level folders, as repository paths. */
function repositoryFiles(...folders: string[]): string[] {
  return folders.flatMap((folder) => sourceFiles(join(ROOT, folder)).map((file) => relative(ROOT, file)));
}

/**
 * Where a broker is started as a child process: `serve` handed to spawn/fork/execFile. The one
 * spawner does it; `bench/ab/measure.ts` runs the CLI of another commit's exported tree, which may
 * predate that spawner.
 */
const SPAWNER = 'src/bench/spawned-broker.ts';
const OTHER_TREE_SPAWNERS = ['bench/ab/measure.ts'];
const CHILD_PROCESS_CALL = /\b(spawn|spawnSync|fork|execFile|execFileSync)\s*\(/;
const SERVE_ARGUMENT = /['"]serve['"]/;

function startsServe(text: string): boolean {
  return CHILD_PROCESS_CALL.test(text) && SERVE_ARGUMENT.test(text);
}

/** Temporary directories in tests come from test/harness/temp-dir.ts (removed after their test). */
const MAKES_TEMP_DIR = /\bmkdtemp(Sync)?\s*\(/;

describe('tests and benchmarks', () => {
  it('src/ imports nothing from test/, bench/ or scripts/', () => {
    expect(violations().filter((problem) => problem.includes('src/ may not import'))).toEqual([]);
    // The check itself: the test harness seen from a source file is outside src/.
    expect(outsideSrc(resolve(SRC, 'cluster', '../../test/harness/etcd.js'))).toBe(true);
    expect(outsideSrc(resolve(SRC, 'cluster', '../broker/broker-node.js'))).toBe(false);
  });

  it(`start brokers as processes only through the one spawner (${SPAWNER})`, () => {
    const self = relative(ROOT, import.meta.filename);
    const spawners = repositoryFiles('src', 'test', 'bench', 'scripts').filter(
      (file) => file !== self && startsServe(readFileSync(join(ROOT, file), 'utf8')),
    );
    expect(spawners.sort()).toEqual([...OTHER_TREE_SPAWNERS, SPAWNER].sort());
    // The check itself: a spawn of `serve` is found.
    expect(startsServe("spawn(process.execPath, ['src/cli/main.ts', 'serve', '--port', '0'])")).toBe(true);
    expect(startsServe("spawn('etcd', ['--name', 'x'])")).toBe(false);
  });

  it('tests make temporary directories only through the harness (test/harness/temp-dir.ts)', () => {
    const self = relative(ROOT, import.meta.filename);
    const own = repositoryFiles('test').filter(
      (file) =>
        file !== self &&
        file !== 'test/harness/temp-dir.ts' &&
        MAKES_TEMP_DIR.test(readFileSync(join(ROOT, file), 'utf8')),
    );
    expect(own).toEqual([]);
    expect(MAKES_TEMP_DIR.test("await mkdtemp(join(tmpdir(), 'x-'))")).toBe(true);
  });
});
