// `memorystreamer serve --cores 2` as a real process: it starts a local etcd and two broker
// processes that form one cluster; a client that bootstraps from either member produces to and
// consumes from partitions led by both; a member killed with SIGKILL is started again on its port,
// and so is etcd; SIGTERM to the supervisor stops every process it started (checked by PID). And the refusals: a
// broker id with --cores, a member that cannot listen (the supervisor exits non-zero, leaving
// nothing running).

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/bench/spawned-broker.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { etcdAvailable } from '../harness/etcd.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

interface Member {
  brokerId: number;
  port: number;
  advertise: string;
  adminPort: number | null;
  dataDir: string;
  pid: number;
}

interface Listening {
  event: 'listening';
  cores: number;
  etcd: { port: number; pid: number; dataDir: string } | null;
  members: Member[];
  brokers: string;
  pid: number;
}

/** `serve --cores …` in a child process, its JSON lines collected as they come. */
function startServe(
  extra: string[],
  dataDir: string,
): { child: ChildProcess; lines: unknown[]; stderr: () => string } {
  const { command, args, env } = serveCommand({ dataDir, port: 0, adminPort: 0 });
  const child = spawn(command, [...args, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: unknown[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, lines, stderr: () => stderr };
}

/** A process that is gone (or a zombie no one has reaped yet, which runs nothing). */
function gone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe.skipIf(!etcdAvailable())('serve --cores', () => {
  const dir = useTempDir('ms-cores-', 'all');
  let serve: ReturnType<typeof startServe>;
  let listening: Listening;
  let client: Client;
  /** Every PID the supervisor started (members, restarted members, etcd), for the SIGTERM check. */
  const started = new Set<number>();

  beforeAll(async () => {
    serve = startServe(['--cores', '2'], join(dir.path, 'data'));
    listening = await until(
      () => (serve.lines.find((line) => (line as Listening).event === 'listening') as Listening) ?? null,
      {
        what: 'serve --cores 2 listens',
        timeoutMs: 60_000,
        abortIf: () => (serve.child.exitCode !== null ? `exited: ${serve.stderr()}` : null),
      },
    );
    for (const member of listening.members) started.add(member.pid);
    if (listening.etcd !== null) started.add(listening.etcd.pid);
    client = await connect({ brokers: listening.members[1]!.advertise });
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    if (serve !== undefined && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      await exitOf(serve.child);
    }
  });

  it('runs two members of one cluster, each in its own data directory, and prints their addresses', () => {
    expect(listening.cores).toBe(2);
    expect(listening.members.map((member) => member.brokerId)).toEqual([1, 2]);
    expect(listening.members.map((member) => member.dataDir)).toEqual([
      join(dir.path, 'data', 'broker-1'),
      join(dir.path, 'data', 'broker-2'),
    ]);
    expect(listening.etcd?.dataDir).toBe(join(dir.path, 'data', 'etcd'));
    expect(listening.brokers).toBe(listening.members.map((member) => `127.0.0.1:${member.port}`).join(','));
    expect(new Set(listening.members.map((member) => member.pid)).size).toBe(2);
    expect(listening.members.every((member) => member.pid !== listening.pid)).toBe(true);
  });

  it('produces and consumes across partitions led by both members', async () => {
    await until(() => client.admin.createTopic({ name: 'orders', partitions: 4 }), {
      what: 'the controller creates the topic',
    });
    const leaders = await until(async () => {
      const topic = (await client.admin.metadata(['orders'])).topics[0]!;
      const found = topic.partitions.map((partition) => partition.leader);
      return found.every((leader) => leader > 0) ? found : null;
    });
    expect(new Set(leaders)).toEqual(new Set([1, 2]));
    const producer = client.producer({ acks: 1 });
    const receipts = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        producer.send({ topic: 'orders', partition: i % 4, value: `m${i}` }),
      ),
    );
    expect(receipts.map((receipt) => receipt.partition)).toEqual(
      Array.from({ length: 200 }, (_, i) => i % 4),
    );
    const consumer = client.consumer({ topics: ['orders'], from: 'earliest' });
    await consumer.start();
    const seen = new Map<number, string[]>();
    let total = 0;
    try {
      while (total < 200) {
        const message = await consumer.next();
        if (message === null) continue;
        seen.set(message.partition, [...(seen.get(message.partition) ?? []), message.value!.toString()]);
        total++;
      }
    } finally {
      await consumer.close();
    }
    for (let partition = 0; partition < 4; partition++)
      expect(seen.get(partition)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i * 4 + partition}`));
  }, 60_000);

  it('starts the local etcd again on its port when it dies', async () => {
    process.kill(listening.etcd!.pid, 'SIGKILL');
    const restarted = await until(
      () =>
        (serve.lines.find((line) => (line as { event?: string }).event === 'etcd-restarted') as {
          pid: number;
        }) ?? null,
      { what: 'etcd starts again', timeoutMs: 30_000 },
    );
    started.add(restarted.pid);
    expect(restarted.pid).not.toBe(listening.etcd!.pid);
    // The control plane answers again: the controller creates a topic.
    await until(() => client.admin.createTopic({ name: 'after-etcd', partitions: 2 }), {
      what: 'a topic created after etcd came back',
      timeoutMs: 30_000,
    });
  }, 60_000);

  it('starts a killed member again on its port', async () => {
    const victim = listening.members[1]!;
    process.kill(victim.pid, 'SIGKILL');
    const restarted = await until(
      () =>
        (serve.lines.find(
          (line) => (line as { event?: string; brokerId?: number }).event === 'member-restarted',
        ) as { pid: number; port: number; brokerId: number }) ?? null,
      { what: 'broker 2 starts again', timeoutMs: 45_000 },
    );
    started.add(restarted.pid);
    expect(restarted).toMatchObject({ brokerId: 2, port: victim.port });
    expect(restarted.pid).not.toBe(victim.pid);
    expect(gone(restarted.pid)).toBe(false);
    expect(serve.lines).toContainEqual(
      expect.objectContaining({ event: 'member-exited', brokerId: 2, signal: 'SIGKILL' }),
    );
    // The partitions it leads take writes again, once the controller has made it their leader
    // again (they have no other replica: offline while it was down).
    const producer = client.producer({ acks: 1 });
    const receipt = await until(
      async () => {
        const led = (await client.admin.metadata(['orders'])).topics[0]!.partitions.find(
          (partition) => partition.leader === 2,
        );
        if (led === undefined) return null;
        return producer.send({ topic: 'orders', partition: led.partition, value: 'back' });
      },
      {
        what: 'a produce to a partition of the restarted member',
        timeoutMs: 30_000,
      },
    );
    expect(receipt.offset).toBe(50n);
  }, 90_000);

  it('stops every process it started on SIGTERM, and exits 0', async () => {
    await client.close();
    serve.child.kill('SIGTERM');
    expect(await exitOf(serve.child)).toBe(0);
    // Each member shut down by itself (exit code 0), none had to be killed.
    expect(serve.lines).toContainEqual({
      event: 'stopped',
      members: [
        { brokerId: 1, code: 0 },
        { brokerId: 2, code: 0 },
      ],
    });
    expect(started.size).toBe(5);
    await until(() => [...started].every(gone), { what: 'no member or etcd left', timeoutMs: 15_000 });
  }, 60_000);
});
