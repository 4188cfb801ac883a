import { Session } from 'node:inspector/promises';
import v8 from 'node:v8';
import { connect } from '../src/client/connect.js';
import { startBrokerProcess } from './lib/broker-process.js';
import { brokerFixedRate } from './lib/fixed-rate.js';
import { latencyHistogram } from './lib/report.js';

const broker = await startBrokerProcess();
const client = await connect({ brokers: `127.0.0.1:${broker.port}` });
await client.admin.createTopic({ name: 't', config: { durability: 'interval' } });
await client.admin.createTopic({ name: 'w', config: { durability: 'interval' } });
await brokerFixedRate(client, 'w', { rate: 10000, seconds: 1 }, latencyHistogram());
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
} as any);
const h = latencyHistogram();
await brokerFixedRate(client, 't', { rate: 10000, seconds: 2 }, h);
const { profile } = (await session.post('HeapProfiler.stopSampling')) as any;
const self = new Map<string, number>();
let total = 0;
const walk = (n: any, stack: string) => {
  const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}:${n.callFrame.lineNumber}`;
  const bytes = n.selfSize;
  total += bytes;
  if (bytes > 0) self.set(name, (self.get(name) ?? 0) + bytes);
  for (const c of n.children) walk(c, name);
};
walk(profile.head, '');
const msgs = 30000;
console.log('sampled bytes per message', (total / msgs).toFixed(0));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30))
  console.log((v / msgs).toFixed(0).padStart(6), k);
console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space'));
await client.close();
await broker.stop();
