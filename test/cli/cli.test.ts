import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/output.js';
import { Broker } from '../../src/embedded/broker.js';
import { startBroker } from '../harness/broker.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';

const scratch = useTempDir('ms-cli-', 'all');
let dataDir: string;
let broker: Broker;
let address: string;

beforeAll(async () => {
  dataDir = scratch.path;
  broker = await Broker.start({ dataDir, port: 0 });
  address = `127.0.0.1:${broker.address!.port}`;
});
afterAll(async () => {
  await broker.stop();
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(['--broker', address, ...argv], {
    env: {},
    out: (t) => out.push(t),
    err: (t) => err.push(t),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('memorystreamer CLI against a real broker', () => {
  it('creates, lists, describes, alters and deletes topics', async () => {
    expect((await cli('topic', 'create', 'events', '--partitions', '2', '--durability', 'always')).out).toBe(
      'created topic events with 2 partition(s)',
    );
    expect((await cli('topic', 'list')).out).toMatch(/events\s+2\s+always/);
    const listed = JSON.parse((await cli('--json', 'topic', 'list')).out) as Array<{ name: string }>;
    expect(listed.map((t) => t.name)).toContain('events');
    expect((await cli('topic', 'describe', 'events')).out).toMatch(/partitions:\s+2/);
    expect(
      (await cli('topic', 'alter', 'events', '--partitions', '3', '--retention-ms', '60000')).out,
    ).toMatch(/retention.ms:\s+60000/);
    expect((await cli('topic', 'alter', 'events', '--cleanup', 'compact')).out).toMatch(/cleanup:\s+compact/);
    const duplicate = await cli('topic', 'create', 'events');
    expect(duplicate.code).toBe(EXIT.failed);
    expect(duplicate.err).toMatch(/TOPIC_ALREADY_EXISTS \(301\)/);
    expect((await cli('topic', 'delete', 'events')).code).toBe(EXIT.ok);
    expect((await cli('topic', 'describe', 'events')).code).toBe(EXIT.failed);
  });

  it('produces from a file and a generated count, then consumes and reads a stream', async () => {
    await cli('topic', 'create', 'lines', '--partitions', '1');
    const file = join(dataDir, 'input.txt');
    await writeFile(file, 'alpha\nbeta\ngamma\n');
    const produced = await cli('--json', 'produce', 'lines', '--file', file, '--key', 'entity-7');
    expect(JSON.parse(produced.out)).toMatchObject({ messages: 3, last: { offset: '2', sequence: 2 } });
    expect((await cli('produce', 'lines', '--count', '500', '--size', '20')).out).toMatch(/sent 500 message/);
    const consumed = await cli('consume', 'lines', '--count', '3', '--from', 'earliest');
    expect(consumed.out.split('\n')).toEqual(['alpha', 'beta', 'gamma']);
    const all = await cli('consume', 'lines', '--idle-ms', '300');
    expect(all.out.split('\n')).toHaveLength(503);
    const stream = await cli('--json', 'stream', 'read', 'lines', 'entity-7', '--from', '1');
    expect(
      stream.out.split('\n').map((l) => (JSON.parse(l) as { value: string; sequence: number }).sequence),
    ).toEqual([1, 2]);
    const grouped = await cli('consume', 'lines', '--group', 'cli-readers', '--count', '2');
    expect(grouped.out.split('\n')).toEqual(['alpha', 'beta']);
    const next = await cli('consume', 'lines', '--group', 'cli-readers', '--count', '1');
    expect(next.out).toBe('gamma');
    expect((await cli('group', 'list')).out).toMatch(/cli-readers\s+empty/);
    expect((await cli('group', 'describe', 'cli-readers')).out).toMatch(/lines\s+0\s+3\s+503\s+500/);
    expect((await cli('consume', 'lines', '--group', 'x', '--partition', '0')).code).toBe(EXIT.usage);
    expect((await cli('offsets', 'lines')).out).toMatch(/PARTITION\s+START\s+END\n\s+0\s+0\s+503/);
    expect((await cli('offsets', 'lines', '--group', 'cli-readers')).out).toMatch(/0\s+0\s+503\s+3\s+500/);
    const status = JSON.parse((await cli('--json', 'status')).out) as {
      reachable: boolean;
      topics: number;
      groups: number;
    };
    expect(status).toMatchObject({ reachable: true, groups: 1 });
    expect(status.topics).toBeGreaterThan(0);
    expect((await cli('status')).out).toMatch(/broker:\s+reachable/);
    const fromTime = await cli(
      'consume',
      'lines',
      '--from',
      new Date(Date.now() + 60_000).toISOString(),
      '--idle-ms',
      '200',
    );
    expect(fromTime.out).toBe('');
  });

  it('rejects bad usage with exit code 2 and an explanation', async () => {
    expect((await cli('topic', 'create', 'x', '--partitions', 'many')).code).toBe(EXIT.usage);
    const badFrom = await cli('consume', 'x', '--from', 'yesterday-ish');
    expect(badFrom.code).toBe(EXIT.usage);
    expect(badFrom.err).toMatch(/--from "yesterday-ish"/);
    expect((await cli('no-such-command')).code).toBe(EXIT.usage);
    expect((await cli('topic', 'create', 'y', '--durability', 'sometimes')).err).toMatch(
      /one of always, interval, never/,
    );
  });

  it('prints the effective configuration and refuses a bad one', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = {
      env: { MEMORYSTREAMER_SERVER_PORT: '7555' },
      out: (t: string) => out.push(t),
      err: (t: string) => err.push(t),
    };
    expect(await run(['config', 'print'], io)).toBe(0);
    expect(out.join('\n')).toMatch(/server\.port\s+7555\s+env/);
    expect(out.join('\n')).toMatch(/topics\.durability\s+interval\s+default/);
    const bad = join(dataDir, 'bad.toml');
    await writeFile(bad, '[server]\nport = "many"\n');
    expect(await run(['serve', '--config', bad], io)).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/INVALID_CONFIG \(304\).*server\.port/);
    // A syntax error names the file, the line and the column.
    err.length = 0;
    await writeFile(bad, '[server]\nport = 7400\nhost = [oops\n');
    expect(await run(['serve', '--config', bad], io)).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(
      new RegExp(`INVALID_CONFIG \\(304\\).*${bad}:3:\\d+: not valid TOML \\(line 3, column \\d+\\)`),
    );
  });

  it('says which listener cannot bind and which setting moves it', async () => {
    const err: string[] = [];
    const io = { env: {}, out: () => undefined, err: (t: string) => err.push(t) };
    const busyPort = String(broker.address!.port);
    const dir = await tempDir('ms-busy-');
    expect(await run(['serve', '--port', busyPort, '--admin-port', '0', '--data-dir', dir], io)).toBe(
      EXIT.failed,
    );
    expect(err.join('\n')).toMatch(
      new RegExp(
        `INVALID_CONFIG \\(304\\):.*cannot listen on 127\\.0\\.0\\.1:${busyPort} for the broker: the address is already in use.*--port`,
      ),
    );
    err.length = 0;
    expect(await run(['serve', '--port', '0', '--admin-port', busyPort, '--data-dir', dir], io)).toBe(
      EXIT.failed,
    );
    expect(err.join('\n')).toMatch(
      /for the admin HTTP endpoint: the address is already in use.*--admin-port/,
    );
  });

  it('takes the broker list from a profile, with --broker and the environment first', async () => {
    const profiles = join(dataDir, 'cli.toml');
    await writeFile(
      profiles,
      `[profiles.default]\nbrokers = "127.0.0.1:1"\n[profiles.local]\nbrokers = "${address}"\n[profiles.bad]\nbrokers = 7\n`,
    );
    const out: string[] = [];
    const err: string[] = [];
    const io = (env: NodeJS.ProcessEnv) => ({
      env,
      out: (t: string) => out.push(t),
      err: (t: string) => err.push(t),
    });
    const env = { MEMORYSTREAMER_CLI_CONFIG: profiles };
    expect(await run(['--profile', 'local', 'topic', 'list'], io(env))).toBe(0);
    expect(await run(['topic', 'list'], io(env))).toBe(EXIT.unavailable);
    expect(await run(['topic', 'list'], io({ ...env, MEMORYSTREAMER_BROKERS: address }))).toBe(0);
    expect(await run(['--broker', address, 'topic', 'list'], io(env))).toBe(0);
    // A profile that is not there, or not usable, is a wrong command line: usage (2), not a refusal.
    expect(await run(['--profile', 'nope', 'topic', 'list'], io(env))).toBe(EXIT.usage);
    expect(err.join('\n')).toMatch(/profile "nope" is not in .*profiles: default, local, bad/);
    expect(await run(['--profile', 'bad', 'topic', 'list'], io(env))).toBe(EXIT.usage);
    expect(
      await run(
        ['--profile', 'x', 'topic', 'list'],
        io({ MEMORYSTREAMER_CLI_CONFIG: join(dataDir, 'missing.toml') }),
      ),
    ).toBe(EXIT.usage);
  });

  it('takes a global option after the subcommand, the later of two winning', async () => {
    const io = { env: {}, out: () => undefined, err: () => undefined };
    // 127.0.0.1:1 refuses connections: exit 3 would mean the first --broker was used.
    expect(await run(['--broker', '127.0.0.1:1', 'topic', 'list', '--broker', address], io)).toBe(0);
    expect(await run(['--broker=127.0.0.1:1', 'status', `--broker=${address}`], io)).toBe(0);
    expect(await run(['--broker', address, 'topic', 'list', '--broker', '127.0.0.1:1'], io)).toBe(
      EXIT.unavailable,
    );
  });

  it("lists the global options in every subcommand's --help", async () => {
    for (const argv of [
      ['topic', 'list', '--help'],
      ['produce', '--help'],
      ['stream', 'read', '--help'],
    ]) {
      const out: string[] = [];
      expect(await run(argv, { env: {}, out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
      const help = out.join('\n');
      expect(help).toMatch(/Global Options:/);
      expect(help).toMatch(/--broker <host:port>/);
      expect(help).toMatch(/--profile <name>/);
      expect(help).toMatch(/--json/);
    }
  });

  it('says so when a stream has no events, and fails for an unknown topic', async () => {
    await cli('topic', 'create', 'streams-empty');
    const empty = await cli('stream', 'read', 'streams-empty', 'nobody', '--idle-ms', '200');
    expect(empty).toMatchObject({ code: EXIT.ok, out: '' });
    expect(empty.err).toBe('stream "nobody" of topic streams-empty has no events');
    await cli('produce', 'streams-empty', '--key', 'one', '--count', '2');
    const past = await cli(
      '--json',
      'stream',
      'read',
      'streams-empty',
      'one',
      '--from',
      '5',
      '--idle-ms',
      '200',
    );
    expect(past).toMatchObject({ code: EXIT.ok, out: '' });
    expect(past.err).toBe('stream "one" of topic streams-empty has no events from sequence 5 on');
    const unknown = await cli('stream', 'read', 'no-such-topic', 'k', '--idle-ms', '200');
    expect(unknown.code).toBe(EXIT.failed);
    expect(unknown.err).toMatch(/UNKNOWN_TOPIC \(300\)/);
  });

  it('prints progress lines to stderr while producing when stderr is not a terminal', async () => {
    await cli('topic', 'create', 'progress');
    const lines: string[] = [];
    const io = {
      env: {},
      out: (t: string) => lines.push(`out ${t}`),
      err: (t: string) => lines.push(`err ${t}`),
    };
    const argv = ['--broker', address, 'produce', 'progress', '--count', '20000', '--size', '10'];
    expect(await run([...argv, '--progress-ms', '1'], io)).toBe(0);
    const progress = lines.filter((l) =>
      /^err produced [\d,]+\/20,000 messages \([\d,]+ msg\/s\) after [\d.]+ s$/.test(l),
    );
    expect(progress.length).toBeGreaterThan(0);
    // They come before the summary, which alone is on stdout.
    expect(lines.indexOf(progress[0]!)).toBeLessThan(lines.findIndex((l) => l.startsWith('out ')));
    expect(lines.filter((l) => l.startsWith('out '))).toEqual([
      expect.stringMatching(/^out sent 20000 message/),
    ]);

    // With --json, stdout stays one JSON document and the progress lines are JSON too.
    lines.length = 0;
    expect(await run(['--json', ...argv, '--progress-ms', '1'], io)).toBe(0);
    const out = lines.filter((l) => l.startsWith('out ')).map((l) => l.slice(4));
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0]!)).toMatchObject({ topic: 'progress', messages: 20000 });
    const err = lines.filter((l) => l.startsWith('err ')).map((l) => JSON.parse(l.slice(4)));
    expect(err.length).toBeGreaterThan(0);
    expect(err[0]).toMatchObject({ progress: { label: 'produced', total: 20000 } });

    // --progress-ms 0 turns them off.
    lines.length = 0;
    expect(await run([...argv, '--progress-ms', '0'], io)).toBe(0);
    expect(lines.filter((l) => l.startsWith('err '))).toEqual([]);
  });

  it('exits 3 when no broker is reachable', async () => {
    const out: string[] = [];
    const code = await run(['--json', '--broker', '127.0.0.1:1', 'topic', 'list'], {
      env: {},
      out: (t) => out.push(t),
      err: () => {},
    });
    expect(code).toBe(EXIT.unavailable);
    expect(JSON.parse(out.join(''))).toMatchObject({ error: { name: 'BROKER_NOT_AVAILABLE' } });
  });

  it('serves from the real binary and stops on SIGTERM', async () => {
    const served = await startBroker();
    try {
      const out: string[] = [];
      const code = await run(['--broker', `127.0.0.1:${served.port}`, 'topic', 'create', 'served'], {
        env: {},
        out: (t) => out.push(t),
        err: (t) => out.push(t),
      });
      expect(code).toBe(0);
      expect(await served.stop()).toBe(0);
    } finally {
      await served.kill();
    }
  });
});
