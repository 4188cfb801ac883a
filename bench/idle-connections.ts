// Holds many idle connections (handshake done, then silent) open against a broker process and
// reports the broker's resident memory per connection. Clients run in 4 child processes. The broker
// needs one file descriptor per connection: check `ulimit -n` (20,000 on the development VM).
// Run: npx tsx bench/idle-connections.ts [--connections 10000] [--json]
import { startBrokerProcess } from './lib/broker-process.js';
import {
  IDLE_CLIENT_PROCESSES,
  type IdleClients,
  openIdleConnections,
  procMemory,
} from './lib/idle-fleet.js';
import { argNumber, printResult, progress, writeResult } from './lib/report.js';

const connections = argNumber('connections', 10_000);

// Every idle connection comes from 127.0.0.1: raise the per-address cap (default 1,024) above them.
const broker = await startBrokerProcess({
  env: { MEMORYSTREAMER_SERVER_MAX_CONNECTIONS_PER_ADDRESS: String(connections + 100) },
});
let idle: IdleClients | null = null;
try {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = (await procMemory(broker.pid)).rss;
  const started = performance.now();
  progress(`opening ${connections} idle connections from client processes`);
  idle = await openIdleConnections(broker.port, connections);
  const openMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = (await procMemory(broker.pid)).rss;
  printResult(
    writeResult({
      benchmark: 'idle-connections',
      title: `${connections.toLocaleString('en-US')} idle connections (handshake done) held by one broker process`,
      command: 'npx tsx bench/idle-connections.ts',
      settings: { connections, clientProcesses: IDLE_CLIENT_PROCESSES },
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
  await idle?.stop();
  await broker.stop();
}
