// A TCP port that was free a moment ago, for processes this one starts and must tell their port
// before they listen (a cluster member advertises its address to the others; etcd is told its
// client and peer URLs on its command line). Another process may take it meanwhile: whoever
// listens on it says so (EADDRINUSE) and the caller picks again.

import { createServer } from 'node:net';

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
