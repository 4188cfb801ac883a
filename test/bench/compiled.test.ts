// The shipped CLI runs compiled JavaScript: its actor threads load worker-entry.js directly and
// --spawn starts dist/cli/main.js, with no tsx anywhere. Build to a scratch directory and run both.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../src/bench/report.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
let outDir: string;

beforeAll(async () => {
  // Inside the repository, so the compiled modules resolve node_modules like dist/ does.
  await mkdir(join(root, '.tmp'), { recursive: true });
  outDir = await makeTempDir('bench-dist-', { parent: join(root, '.tmp') });
  await run(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(root, 'tsconfig.build.json'),
      '--outDir',
      outDir,
      '--declaration',
      'false',
      '--declarationMap',
      'false',
      '--sourceMap',
      'false',
    ],
    { cwd: root },
  );
}, 60_000);
afterAll(async () => {
  await removeTempDir(outDir);
});

describe('the compiled bench command', () => {
  it.each(['--embedded', '--spawn'])('runs %s from JavaScript without tsx', async (mode) => {
    const { stdout } = await run(
      process.execPath,
      [join(outDir, 'cli', 'main.js'), '--json', 'bench', mode, '--messages', '1000', '--warmup', '0'],
      // Another working directory: nothing may depend on being started from the repository.
      { cwd: tmpdir(), env: { ...process.env, NODE_OPTIONS: '' } },
    );
    const report = JSON.parse(stdout) as BenchReport;
    expect(report.produce.messages).toBe(1000);
    expect(report.consume!.messages).toBe(1000);
    expect(report.missing).toBe(0);
    expect(report.latencyUs.endToEnd!.count).toBe(1000);
  });
});
