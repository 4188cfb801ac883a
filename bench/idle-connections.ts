// Holds many idle connections (handshake done, then silent) open against a broker process and
// reports the broker's resident memory per connection. Clients run in 4 child processes. The broker
// needs one file descriptor per connection: check `ulimit -n` (20,000 on the development VM).
// Run: npx tsx bench/idle-connections.ts [--connections 10000] [--json]
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { startBrokerProcess } from './lib/broker-process.js';
import { argNumber, printResult, progress, writeResult } from './lib/report.js';

const connections = argNumber('connections', 10_000);
const CHILDREN = 4;

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

const broker = await startBrokerProcess();
const children: ChildProcess[] = [];
try {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = await rssBytes(broker.pid);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CHILDREN }, async (_, i) => {
      const share = Math.floor(connections / CHILDREN) + (i < connections % CHILDREN ? 1 : 0);
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'bench/lib/idle-clients.ts', String(broker.port), String(share)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().startsWith('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`client process exited with ${code}`)));
      });
      progress(`client process ${i + 1}/${CHILDREN} holds ${share} connections`);
    }),
  );
  const openMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = await rssBytes(broker.pid);
  printResult(
    writeResult({
      benchmark: 'idle-connections',
      title: `${connections.toLocaleString('en-US')} idle connections (handshake done) held by one broker process`,
      command: 'npx tsx bench/idle-connections.ts',
      settings: { connections, clientProcesses: CHILDREN },
      rows: [
        {
          connections,
          'broker RSS before MiB': Math.round(before / 2 ** 20),
          'broker RSS after MiB': Math.round(after / 2 ** 20),
          'bytes per connection': Math.round((after - before) / connections),
          'seconds to open all': Number((openMs / 1000).toFixed(1)),
        },
      ],
    }),
  );
} finally {
  for (const child of children) child.kill('SIGTERM');
  await broker.stop();
}
