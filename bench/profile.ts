// Where the time goes: CPU profiles of the broker process (node --cpu-prof) and of the client
// process (the inspector's profiler) while a producer sends at full rate over TCP loopback and a
// consumer replays everything, 100-byte messages. Prints and records the self time per function
// (top entries) and per category: our code by folder, Node.js internals, native code / syscalls
// ("(program)"), the garbage collector, idle. The .cpuprofile files are kept under
// bench/results/profiles/ (gitignored) for flame-graph viewers (Chrome DevTools, speedscope).
// `--phase produce` or `--phase replay` summarizes that part of the run alone (default: both).
// Run: npx tsx bench/profile.ts [--messages 2000000] [--phase both|produce|replay] [--json]
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import type { Client } from '../src/client/client.js';
import { connect } from '../src/client/connect.js';
import { startBrokerProcess } from './lib/broker-process.js';
import { argChoice, argNumber, printResult, progress, type Row, rate, writeResult } from './lib/report.js';

const messages = argNumber('messages', 2_000_000);
const phase = argChoice('phase', ['both', 'produce', 'replay'] as const, 'both');
const value = Buffer.alloc(100, 0x70);
const PROFILE_DIR = join(process.cwd(), 'bench', 'results', 'profiles');

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Now on the clock V8's profiler stamps its samples with (µs). */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function produceAndReplay(
  client: Client,
): Promise<{ produce: number; replay: number; replayFrom: number }> {
  const topic = `profile-${Date.now()}`;
  await client.admin.createTopic({ name: topic });
  const producer = client.producer({ batchBytes: 256 * 1024 });
  const chunk = Array.from({ length: 1000 }, () => ({ topic, value }));
  let started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let sent = 0; sent < messages; sent += chunk.length) {
    window.push(producer.sendMany(chunk));
    if (window.length === 8) {
      await Promise.all(window);
      window = [];
      progress(`produced ${sent + chunk.length} of ${messages}`);
    }
  }
  await Promise.all(window);
  const produce = rate(messages, performance.now() - started);
  await producer.close();
  const replayFrom = nowUs();
  const consumer = client.consumer({ topics: [topic], from: 'earliest', creditBytes: 8 * 1024 * 1024 });
  started = performance.now();
  let count = 0;
  for await (const _ of consumer) {
    if (++count % 200_000 === 0) progress(`replayed ${count} of ${messages}`);
    if (count === messages) break;
  }
  return { produce, replay: rate(messages, performance.now() - started), replayFrom };
}

/** Where a function's code lives, as a category for the summary. */
function category(url: string, name: string): string {
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'native code and syscalls (program)';
  if (url.includes('node_modules'))
    return `dependency ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? ''}`;
  if (url.includes('/src/')) return `memorystreamer ${/\/src\/([a-z]+)\//.exec(url)?.[1] ?? 'src'}`;
  if (url.startsWith('node:') || url === '') return 'Node.js internals and builtins';
  return 'other';
}

interface Summary {
  totalMs: number;
  categories: Array<{ name: string; ms: number; share: number }>;
  functions: Array<{ name: string; where: string; ms: number; share: number }>;
}

/**
 * Self time per function over the samples taken between `from` and `to` (µs on the monotonic
 * clock that V8's profiler and process.hrtime share on Linux), idle excluded: the shares are of
 * busy CPU time.
 */
function summarize(profile: CpuProfile, from: number, to: number): Summary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from || at > to) continue;
    const id = profile.samples[i]!;
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const categories = new Map<string, number>();
  const functions = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    const cat = category(frame.url, frame.functionName);
    categories.set(cat, (categories.get(cat) ?? 0) + us);
    // Line numbers would be those of tsx's transpiled output: name the file only.
    const where = frame.url.replace(/^.*\/(src|node_modules)\//, '$1/').replace(/^file:\/\//, '');
    const key = `${frame.functionName}@${where}`;
    const entry = functions.get(key) ?? { name: frame.functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const share = (us: number) => Number(((us / total) * 100).toFixed(1));
  return {
    totalMs: Math.round(total / 1000),
    categories: [...categories]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: share(us) })),
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 12)
      .map((f) => ({ name: f.name, where: f.where, ms: Math.round(f.us / 1000), share: share(f.us) })),
  };
}

async function main(): Promise<void> {
  await rm(PROFILE_DIR, { recursive: true, force: true });
  await mkdir(PROFILE_DIR, { recursive: true });
  const brokerDir = join(PROFILE_DIR, 'broker');
  const broker = await startBrokerProcess({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${brokerDir}`] });
  const session = new Session();
  session.connect();
  let rates: { produce: number; replay: number; replayFrom: number };
  let clientProfile: CpuProfile;
  // The workload's time window, so the broker's start-up (module loading) is left out.
  let windowFrom = 0;
  let windowTo = 0;
  try {
    const client = await connect({ brokers: [`127.0.0.1:${broker.port}`] });
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    windowFrom = nowUs();
    rates = await produceAndReplay(client);
    windowTo = nowUs();
    clientProfile = (await session.post('Profiler.stop')).profile as unknown as CpuProfile;
    await client.close();
  } finally {
    session.disconnect();
    await broker.stop();
  }
  await writeFile(join(PROFILE_DIR, 'client.cpuprofile'), JSON.stringify(clientProfile));
  const brokerFile = (await readdir(brokerDir)).find((f) => f.endsWith('.cpuprofile'));
  if (brokerFile === undefined) throw new Error('the broker wrote no CPU profile');
  const brokerProfile = JSON.parse(await readFile(join(brokerDir, brokerFile), 'utf8')) as CpuProfile;

  // The part of the run summarized: produce, replay, or both.
  if (phase === 'produce') windowTo = rates.replayFrom;
  if (phase === 'replay') windowFrom = rates.replayFrom;
  const rows: Row[] = [];
  for (const [process, profile] of [
    ['broker', brokerProfile],
    ['client', clientProfile],
  ] as const) {
    const summary = summarize(profile, windowFrom, windowTo);
    const windowMs = (windowTo - windowFrom) / 1000;
    rows.push({
      process,
      kind: 'busy',
      what: 'CPU busy (not idle) over the workload window',
      where: '',
      'self ms': summary.totalMs,
      'share %': Number(((summary.totalMs / windowMs) * 100).toFixed(1)),
    });
    for (const c of summary.categories)
      rows.push({ process, kind: 'category', what: c.name, where: '', 'self ms': c.ms, 'share %': c.share });
    for (const f of summary.functions)
      rows.push({
        process,
        kind: 'function',
        what: f.name,
        where: f.where,
        'self ms': f.ms,
        'share %': f.share,
      });
  }
  const result = writeResult({
    benchmark: 'profile',
    title: `CPU profile: self time by category and top functions, broker and client, ${phase === 'both' ? 'produce then replay' : `the ${phase} part of a produce then replay`}`,
    command: `npx tsx bench/profile.ts --messages ${messages}${phase === 'both' ? '' : ` --phase ${phase}`}`,
    settings: {
      transport: 'TCP loopback, broker child process (node --cpu-prof), client in the bench process',
      messageBytes: value.length,
      messages,
      producer: 'sendMany of 1,000, 8 in flight, 256 KiB batches',
      durability: 'interval (default)',
      'produce msg/s (profiled)': rates.produce,
      'replay msg/s (profiled)': rates.replay,
    },
    rows,
    notes: [
      `Only samples inside the ${phase === 'both' ? 'produce + replay' : phase} window count (start-up excluded), and idle samples are left out: shares are of busy CPU time. Self time: samples whose innermost frame is that function. "(program)" is time in native code outside JavaScript: syscalls (writev, read), libuv, the N-API CRC-32C, V8 runtime calls.`,
      'Profiling slows both processes; the msg/s in the settings are from the profiled run, not the benchmark figures.',
      'Profiles: bench/results/profiles/{broker/*.cpuprofile, client.cpuprofile}, for Chrome DevTools or speedscope.',
    ],
  });
  printResult(result);
}

await main();
