// A cluster with TLS everywhere, for real: etcd serves clients over TLS only and requires client
// certificates (--client-cert-auth); three brokers reach it with `etcds://…?ca=&cert=&key=`,
// listen with TLS requiring client certificates, and replicate to each other over mutual TLS
// (a follower that spoke plain TCP, or TLS without its certificate, would never fetch a byte).
// Reaching that etcd without the client certificate, or in plain HTTP, fails with
// CONTROL_PLANE_UNAVAILABLE.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import type { Client } from '../../src/client/client.js';
import { connect } from '../../src/client/connect.js';
import { clusterPart } from '../../src/cluster/cluster-node.js';
import { parseClusterUrl } from '../../src/cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../src/cluster/control-plane/control-plane.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { makeCertificates, opensslAvailable, type TestCertificates } from '../broker/server/helpers/certs.js';
import { type EtcdProcess, etcdAvailable, freePort, startTlsEtcd } from '../harness/etcd.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

let etcd: EtcdProcess;
let root: string;
let certs: TestCertificates;
const nodes: BrokerNode[] = [];
let client: Client | null = null;

describe.skipIf(!etcdAvailable() || !opensslAvailable())(
  'cluster over TLS: etcd, brokers, replication',
  () => {
    beforeAll(async () => {
      root = await makeTempDir('ms-tls-cluster-');
      certs = await makeCertificates(await makeTempDir('ms-tls-cluster-certs-'));
      const file = (name: string) => join(certs.dir, name);
      etcd = await startTlsEtcd({
        certFile: file('broker.pem'),
        keyFile: file('broker.key'),
        caFile: file('ca.pem'),
        clientCertAuth: true,
        clientCertFile: file('client.pem'),
        clientKeyFile: file('client.key'),
      });
      const hostPort = etcd.endpoint.replace('https://', '');
      const cluster = `etcds://${hostPort}/secure?ca=${file('ca.pem')}&cert=${file('client.pem')}&key=${file('client.key')}`;
      for (const brokerId of [1, 2, 3]) {
        const port = await freePort();
        nodes.push(
          await BrokerNode.start(
            {
              dataDir: join(root, `b${brokerId}`),
              port,
              brokerId,
              memoryTrim: false,
              raiseFileLimit: false,
              tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'require' },
            },
            [clusterPart({ cluster, brokerId, advertise: `127.0.0.1:${port}`, leaseTtlSeconds: 2 })],
          ),
        );
      }
      client = await connect({
        brokers: nodes.map((node) => `memorystreamer+tls://127.0.0.1:${node.address!.port}`),
        tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      });
    }, 60_000);
    afterAll(async () => {
      await client?.close();
      for (const node of nodes) await node.stop({ deadlineMs: 500 });
      await etcd?.stop();
      if (root !== undefined) await removeTempDir(root);
      if (certs !== undefined) await removeTempDir(certs.dir);
    });

    it('replicates between brokers over mutual TLS, with the metadata in etcd over TLS', async () => {
      await until(async () => {
        try {
          return await client!.admin.createTopic({ name: 'sealed', partitions: 1, replicationFactor: 3 });
        } catch (error) {
          if (error instanceof MemoryStreamerError && error.retriable) return null;
          throw error;
        }
      });
      const producer = client!.producer({ acks: 'all' });
      await until(async () => producer.send({ topic: 'sealed', value: 'first' }), { timeoutMs: 30_000 });
      for (let i = 0; i < 49; i++) await producer.send({ topic: 'sealed', value: `m${i}` });
      // Every broker holds every message: the followers fetched them from the leader over TLS.
      await until(
        async () =>
          nodes.every((node) => node.core.partition('sealed', 0).log.logEndOffset === 50n) ? true : null,
        { what: 'all three replicas hold 50 messages', timeoutMs: 30_000 },
      );
    });

    it('refuses to reach the TLS etcd without a client certificate, or in plain HTTP', async () => {
      const hostPort = etcd.endpoint.replace('https://', '');
      for (const url of [
        `etcds://${hostPort}/secure?ca=${join(certs.dir, 'ca.pem')}`,
        `etcd://${hostPort}/secure`,
      ]) {
        await expect(
          ControlPlane.connect({ address: parseClusterUrl(url), connectTimeoutMs: 1500 }),
        ).rejects.toMatchObject({ codeName: 'CONTROL_PLANE_UNAVAILABLE' });
      }
    });
  },
);
