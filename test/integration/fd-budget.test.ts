// The file-descriptor budget with a real broker process under a small open-files limit
// (`prlimit --nofile=512:512`): client connections are capped so that the admin port and /healthz
// keep answering while a flood holds every connection it may; a connection past the cap gets
// TOO_MANY_CONNECTIONS at once; a topic with many more partitions than there are descriptors is
// created and served (storage opens files on use under its own cap), and the broker starts again.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { handshakeCommand } from '../../src/protocol/commands/control.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { encodeFrame, FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startBroker, type TestBroker } from '../harness/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

const FILE_LIMIT = 512;
/**
 * The connection test's limit: the budget counts the descriptors open when the broker plans it,
 * and under the test's TypeScript loader (on Node 22+ its hooks run in a thread of their own that
 * reads source files meanwhile) that count can be hundreds higher than a built broker's, which
 * would leave 512 with next to no room for connections.
 */
const CONNECTION_TEST_LIMIT = 1024;

interface LimitedBroker {
  broker: TestBroker;
  port: number;
  adminPort: number;
  /** The `maxConnections` the broker logged at start. */
  maxConnections: number;
  stderr: () => string;
}

const dataDir = useTempDir('ms-fd-');
const brokers: TestBroker[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }
  for (const broker of brokers.splice(0)) await broker.kill();
});

/** `memorystreamer serve` under `prlimit --nofile=LIMIT:LIMIT`, logging at info. */
async function startLimitedBroker(limit = FILE_LIMIT): Promise<LimitedBroker> {
  const broker = await startBroker({
    dataDir: dataDir.path,
    wrapper: ['prlimit', `--nofile=${limit}:${limit}`],
    logLevel: 'info',
  });
  brokers.push(broker);
  const budgetLine = await broker.waitForLog((line) => line.maxConnections !== undefined);
  expect(budgetLine.limit).toBe(limit);
  return {
    broker,
    port: broker.port,
    adminPort: broker.adminPort!,
    maxConnections: budgetLine.maxConnections as number,
    stderr: broker.stderr,
  };
}

function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A child process that opens `count` connections, handshakes on each and reports how each was
 * answered: a handshake response (accepted), an error frame (its code), or nothing (closed or no
 * answer within 10 s). It keeps the accepted ones open until its standard input closes.
 */
function flood(
  port: number,
  count: number,
): Promise<{ child: ChildProcess; answers: Record<string, number> }> {
  const writer = new BinaryWriter(64);
  handshakeCommand.encodeRequest(writer, { minVersion: 1, maxVersion: 1, features: 0, clientId: 'flood' });
  const handshake = encodeFrame({ opcode: Opcode.HANDSHAKE, correlationId: 1 }, writer.finish()).toString(
    'hex',
  );
  const script = `
    const net = require('node:net');
    const [port, count, hex, errorFlag] = process.argv.slice(1);
    const frame = Buffer.from(hex, 'hex');
    const answers = {};
    let pending = Number(count);
    const note = (what) => { answers[what] = (answers[what] ?? 0) + 1; if (--pending === 0) process.stdout.write(JSON.stringify(answers) + '\\n'); };
    for (let i = 0; i < Number(count); i++) {
      // The handshake goes only to a connection the broker has not refused at once: a refused
      // one is answered and closed before it sends anything (bytes it sent could meet a reset).
      let quiet = null;
      const socket = net.connect({ host: '127.0.0.1', port: Number(port) }, () => {
        quiet = setTimeout(() => socket.write(frame), 1500);
      });
      let done = false;
      const finish = (what) => { if (!done) { done = true; note(what); } };
      const timer = setTimeout(() => finish('no answer'), 10000);
      socket.on('data', (chunk) => {
        clearTimeout(timer);
        clearTimeout(quiet);
        if (chunk.length < 40) return finish('short');
        const flags = chunk[5];
        finish((flags & Number(errorFlag)) !== 0 ? 'error ' + chunk.readUInt16LE(28) : 'accepted');
      });
      socket.on('error', (e) => { clearTimeout(timer); finish('socket ' + e.code); });
      socket.on('close', () => { clearTimeout(timer); clearTimeout(quiet); finish('closed'); });
    }
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const child = spawn(
    process.execPath,
    ['-e', script, String(port), String(count), handshake, String(FrameFlags.ERROR)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve({ child, answers: JSON.parse(out) as Record<string, number> });
    });
    child.once('exit', (code) => reject(new Error(`flood exited with ${code}`)));
  });
}

describe('file-descriptor budget', () => {
  it('caps connections so that the admin port answers while a flood holds every one', async () => {
    const broker = await startLimitedBroker(CONNECTION_TEST_LIMIT);
    expect(broker.maxConnections).toBeGreaterThan(10);
    expect(broker.maxConnections).toBeLessThan(CONNECTION_TEST_LIMIT);
    // More connections than the process has descriptors.
    const { answers } = await flood(broker.port, CONNECTION_TEST_LIMIT);
    expect(answers.accepted).toBe(broker.maxConnections);
    expect(answers[`error ${ErrorCode.TOO_MANY_CONNECTIONS}`]).toBe(
      CONNECTION_TEST_LIMIT - broker.maxConnections,
    );
    // While they are held: health, a new admin request, and a refusal at once past the cap.
    expect(await httpGet(broker.adminPort, '/healthz')).toMatchObject({ status: 200 });
    expect((await httpGet(broker.adminPort, '/api/topics')).status).toBe(200);
    const late = await RawClient.open(broker.port);
    const refused = await late.waitFor(
      (f) =>
        (f.header.flags & FrameFlags.ERROR) !== 0 && f.header.errorCode === ErrorCode.TOO_MANY_CONNECTIONS,
      2000,
    );
    expect(refused.header.errorCode).toBe(ErrorCode.TOO_MANY_CONNECTIONS);
    expect(broker.stderr()).not.toMatch(/EMFILE/);
  });

  it('creates a topic with six times more partitions than the limit has descriptors, restarts with it, and refuses the name twice cleanly', async () => {
    const broker = await startLimitedBroker();
    const cli = async (...argv: string[]) => {
      const lines: string[] = [];
      const code = await run(['--broker', `127.0.0.1:${broker.port}`, ...argv], {
        env: {},
        out: (t) => lines.push(t),
        err: (t) => lines.push(t),
      });
      return { code, text: lines.join('\n') };
    };
    const partitions = FILE_LIMIT * 6;
    expect((await cli('topic', 'create', 'wide', '--partitions', String(partitions))).code).toBe(0);
    // The second create is refused with a clear error, not EMFILE, and nothing is half-made.
    const again = await cli('topic', 'create', 'wide', '--partitions', String(partitions));
    expect(again.code).toBe(1);
    expect(again.text).toContain('TOPIC_ALREADY_EXISTS');
    // Storage opens segment files on use under its own cap: every partition takes writes.
    for (const partition of [0, partitions / 2, partitions - 1])
      expect(
        (await cli('produce', 'wide', '--partition', String(partition), '--count', '1', '--size', '10')).code,
      ).toBe(0);
    expect(openDescriptors(broker.broker.pid)).toBeLessThan(FILE_LIMIT);
    expect(broker.stderr()).not.toMatch(/INTERNAL_ERROR|EMFILE/);
    expect(await broker.broker.stop()).toBe(0);

    const restarted = await startLimitedBroker();
    const lines: string[] = [];
    await run(['--broker', `127.0.0.1:${restarted.port}`, 'topic', 'list'], {
      env: {},
      out: (t) => lines.push(t),
      err: (t) => lines.push(t),
    });
    expect(lines.join('\n')).toMatch(new RegExp(`wide\\s+${partitions}`));
    expect(openDescriptors(restarted.broker.pid)).toBeLessThan(FILE_LIMIT);
  }, 240_000);
});
