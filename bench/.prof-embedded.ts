import { mkdtemp } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { Broker } from '../src/embedded/broker.js';

const eb = await Broker.start({ dataDir: await mkdtemp('/tmp/prof-') });
const client = eb.connect();
await client.admin.createTopic({ name: 't', config: { durability: 'interval' } });
const value = Buffer.alloc(100, 0x63);
const producer = client.producer({ batchBytes: 256 * 1024 });
const chunk = Array.from({ length: 1000 }, () => ({ topic: 't', value }));
async function run(n: number) {
  const started = performance.now();
  let window: Promise<unknown>[] = [];
  for (let i = 0; i < n / 1000; i++) {
    window.push(producer.sendMany(chunk));
    if (window.length === 8) {
      await Promise.all(window);
      window = [];
    }
  }
  await Promise.all(window);
  return Math.round(n / ((performance.now() - started) / 1000));
}
await run(500_000);
const session = new Session();
session.connect();
if (process.argv[2] === 'prof') {
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const rates = [];
for (let i = 0; i < 3; i++) rates.push(await run(1_000_000));
console.log('rates', rates.join(' '));
if (process.argv[2] === 'prof') {
  const p = (await session.post('Profiler.stop')).profile as any;
  const byId = new Map(p.nodes.map((n: any) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n: any = byId.get(p.samples[i]);
    const d = p.timeDeltas[i] ?? 0;
    const name = n.callFrame.functionName || '(anon)';
    if (name === '(idle)') continue;
    const k = `${name} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${n.callFrame.lineNumber}`;
    self.set(k, (self.get(k) ?? 0) + d);
    total += d;
  }
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(((100 * v) / total).toFixed(1).padStart(5), k);
}
await producer.close();
await client.close();
await eb.stop();
