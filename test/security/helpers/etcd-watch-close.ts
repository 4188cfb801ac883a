// Child process for etcd-client.test.ts: a client to `argv[2]` watches a key and prints
// `watching`; once the watch stream is lost (the parent stops etcd) it waits `argv[3]` ms while
// every reconnect fails, then cancels the watch, closes the client and prints `closed`, and lets
// the event loop drain: the parent measures how long the process takes to exit after that line.

import { etcdClient } from '../../../src/security/etcd-client.js';

const [endpoint, failingForMs] = [process.argv[2]!, Number(process.argv[3])];
const client = etcdClient({ endpoints: [endpoint] }, 200);
const watcher = await client.watch().key('memorystreamer-test').create();
watcher.once('disconnected', () => {
  setTimeout(() => {
    void watcher.cancel().then(() => {
      client.close();
      process.stdout.write('closed\n');
    });
  }, failingForMs);
});
process.stdout.write('watching\n');
