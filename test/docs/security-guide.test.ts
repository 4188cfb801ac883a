// Runs docs/security.md's "From zero to a TLS + SCRAM + ACL broker" as it stands: its shell
// blocks, in a temporary directory, with `memorystreamer` on the PATH as this checkout's CLI and
// the guide's ports 7400/7401 replaced by free ones. If the guide drifts from the product (a flag
// renamed, a config key moved, a denial no longer reported), this test fails.

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { opensslAvailable } from '../broker/server/helpers/certs.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const HEADING = '## From zero to a TLS + SCRAM + ACL broker';

/** The shell blocks of the guide's section, in order. */
function guideBlocks(): string[] {
  const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const start = doc.indexOf(`${HEADING}\n`);
  if (start < 0) throw new Error(`docs/security.md has no "${HEADING}"`);
  const end = doc.indexOf('\n## ', start + HEADING.length);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

/** Commands of a block: comment lines dropped, backslash continuations joined. */
function commandsOf(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

let broker: ChildProcess | null = null;
afterEach(() => {
  if (broker !== null && broker.exitCode === null) broker.kill('SIGKILL');
  broker = null;
});

describe.skipIf(!opensslAvailable())('the security guide, from zero to TLS + SCRAM + ACLs', () => {
  const work = useTempDir('ms-security-guide-', 'each');

  it('runs as written: the admin creates, alice writes and reads, and is refused a delete', async () => {
    const [prepare, serve, clients] = guideBlocks();
    expect(prepare).toBeDefined();
    expect(serve).toMatch(/memorystreamer serve --config broker\.toml/);
    expect(clients).toBeDefined();
    const port = await freePort();
    const adminPort = await freePort();
    const ports = (text: string) =>
      text.replaceAll('7400', String(port)).replaceAll('7401', String(adminPort));

    // `memorystreamer` on the PATH: this checkout's CLI through tsx.
    const bin = join(work.path, 'bin');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    await sh(`mkdir -p ${bin}`, work.path, process.env);
    await writeFile(
      join(bin, 'memorystreamer'),
      `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${main}" "$@"\n`,
    );
    await chmod(join(bin, 'memorystreamer'), 0o755);
    let env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      ADMIN_PASSWORD: 'admin-guide-password',
      ALICE_PASSWORD: 'alice-guide-password',
    };
    for (const name of Object.keys(env)) if (name.startsWith('MEMORYSTREAMER_')) delete env[name];

    const prepared = await sh(`set -e\n${ports(prepare!)}`, work.path, env);
    expect(prepared.err).not.toMatch(/error|refused/i);
    expect(prepared.code).toBe(0);

    broker = spawn('bash', ['-c', `exec ${commandsOf(ports(serve!)).join(' ')}`], {
      cwd: work.path,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let brokerOutput = '';
    broker.stdout!.on('data', (chunk: Buffer) => (brokerOutput += chunk.toString()));
    broker.stderr!.on('data', (chunk: Buffer) => (brokerOutput += chunk.toString()));
    await until(() => portOpen(port), {
      what: 'the broker of step 4 listens',
      timeoutMs: 30_000,
      abortIf: () => (broker?.exitCode === null ? null : `it exited: ${brokerOutput}`),
    });

    const results: Ran[] = [];
    for (const command of commandsOf(clients!)) {
      const exported = /^export (.*)$/.exec(command);
      if (exported !== null) {
        env = { ...env };
        for (const assignment of ports(exported[1]!).split(/\s+/)) {
          const [name, ...value] = assignment.split('=');
          env[name!] = value.join('=');
        }
        continue;
      }
      results.push(await sh(ports(command), work.path, env));
    }
    const [created, produced, consumed, deleted] = results;
    expect(created!.err).toBe('');
    expect(created!.code).toBe(0);
    expect(produced!.code).toBe(0);
    expect(consumed!.code).toBe(0);
    expect(consumed!.out).toContain('{"id":1}');
    expect(deleted!.code).toBe(1);
    expect(deleted!.err).toMatch(/AUTHORIZATION_FAILED \(801\)/);

    broker.kill('SIGTERM');
    await until(() => broker!.exitCode !== null, { timeoutMs: 20_000 });
    expect(broker.exitCode).toBe(0);
  });
});
