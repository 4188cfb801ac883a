// The broker node's start and stop order, as its optional parts see it: a part starts with storage
// open and before clients can connect, and stops after the listener has closed and before storage
// closes; a part that fails to start fails the node's start and leaves nothing running.
import { connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { BrokerCore } from '../../src/broker/broker-core.js';
import { BrokerNode, type NodePart } from '../../src/broker/broker-node.js';
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

const dir = useTempDir('ms-broker-node-');

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port nothing listens on now (the node is then started on it). */
async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

/** Whether the core still serves requests (a closed one refuses them with SHUTTING_DOWN). */
async function serves(core: BrokerCore): Promise<boolean> {
  return core.execute('listTopics', {}).then(
    () => true,
    () => false,
  );
}

describe('BrokerNode', () => {
  it('starts parts between storage and the listener and stops them between the listener and storage', async () => {
    const port = await freePort();
    const events: string[] = [];
    const part = (name: string) => async (core: BrokerCore) => {
      // Storage is open: the part may use the core; no client can reach the node yet.
      await core.execute('createTopic', { name: `${name}-topic`, partitions: 1 });
      events.push(`start ${name}: listening=${await accepts(port)}`);
      return {
        name,
        stop: async () => {
          events.push(`stop ${name}: listening=${await accepts(port)} serving=${await serves(core)}`);
        },
      } satisfies NodePart;
    };
    const node = await BrokerNode.start({ dataDir: dir.path, port }, [part('a'), part('b')]);
    expect(node.parts.map((p) => p.name)).toEqual(['a', 'b']);
    expect(await accepts(port)).toBe(true);
    expect(node.core.topicNames()).toEqual(expect.arrayContaining(['a-topic', 'b-topic']));
    await node.stop();
    expect(events).toEqual([
      'start a: listening=false',
      'start b: listening=false',
      'stop b: listening=false serving=true',
      'stop a: listening=false serving=true',
    ]);
    expect(await serves(node.core)).toBe(false);
  });

  it('a part that fails to start fails the start: the parts before it stop, nothing listens, the data directory is free', async () => {
    const port = await freePort();
    const stopped: string[] = [];
    const failure = new Error('control plane unreachable');
    await expect(
      BrokerNode.start({ dataDir: dir.path, port, admin: { port: 0 } }, [
        async () => ({ name: 'first', stop: async () => void stopped.push('first') }),
        async () => {
          throw failure;
        },
      ]),
    ).rejects.toBe(failure);
    expect(stopped).toEqual(['first']);
    expect(await accepts(port)).toBe(false);
    // Storage was closed (its data-directory lock released): the directory opens again.
    const again = await Broker.start({ dataDir: dir.path });
    await again.stop();
  });

  it('a part whose stop fails does not keep the others or storage from stopping', async () => {
    const stopped: string[] = [];
    const node = await BrokerNode.start({ dataDir: dir.path }, [
      async () => ({ name: 'first', stop: async () => void stopped.push('first') }),
      async () => ({
        name: 'broken',
        stop: async () => {
          throw new Error('lease revoke failed');
        },
      }),
    ]);
    await node.stop();
    expect(stopped).toEqual(['first']);
    expect(await serves(node.core)).toBe(false);
  });
});
