// Which cluster and broker id a data directory belongs to, kept in `<dataDir>/cluster.json`:
//
//   { "version": 1, "clusterId": "<uuid>", "brokerId": <n> }
//
// written once (temporary file, fdatasync, rename, directory fsync) when a broker first joins a
// cluster with this directory, and checked at every later start: a directory never joins as
// another broker id or into another cluster, and a directory that already holds single-node
// topics does not join a cluster at all (the cluster would not know its topics).

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { nodeStorageFs } from '../storage/storage-fs.js';

export const IDENTITY_FILE = 'cluster.json';

export interface BrokerIdentity {
  readonly clusterId: string;
  readonly brokerId: number;
}

export async function readIdentity(dataDir: string): Promise<BrokerIdentity | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, IDENTITY_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let record: { version?: unknown; clusterId?: unknown; brokerId?: unknown };
  try {
    record = JSON.parse(text) as typeof record;
  } catch {
    throw errorOf('CLUSTER_ID_MISMATCH', `${join(dataDir, IDENTITY_FILE)} is not valid JSON`);
  }
  if (
    record.version !== 1 ||
    typeof record.clusterId !== 'string' ||
    record.clusterId.length === 0 ||
    typeof record.brokerId !== 'number' ||
    !Number.isSafeInteger(record.brokerId) ||
    record.brokerId < 0
  )
    throw errorOf(
      'CLUSTER_ID_MISMATCH',
      `${join(dataDir, IDENTITY_FILE)} does not hold a version 1 cluster and broker id`,
    );
  return { clusterId: record.clusterId, brokerId: record.brokerId };
}

/**
 * Records the identity on first use, or checks it matches. Refuses (CLUSTER_ID_MISMATCH, naming
 * both sides) a directory of another cluster or broker id, or one that holds single-node topics.
 */
export async function claimIdentity(dataDir: string, identity: BrokerIdentity): Promise<void> {
  const existing = await readIdentity(dataDir);
  if (existing !== null) {
    if (existing.clusterId !== identity.clusterId)
      throw errorOf(
        'CLUSTER_ID_MISMATCH',
        `${dataDir} belongs to cluster ${existing.clusterId}, not ${identity.clusterId} (use a new data directory to join this cluster)`,
      );
    if (existing.brokerId !== identity.brokerId)
      throw errorOf(
        'CLUSTER_ID_MISMATCH',
        `${dataDir} belongs to broker ${existing.brokerId}, not ${identity.brokerId} (start it with --broker-id ${existing.brokerId})`,
      );
    return;
  }
  // Internal topics (`__consumer_offsets`) are made by every broker at its first start.
  const topics = (await readdir(join(dataDir, 'topics')).catch(() => [] as string[])).filter(
    (name) => !name.startsWith('__'),
  );
  if (topics.length > 0)
    throw errorOf(
      'CLUSTER_ID_MISMATCH',
      `${dataDir} holds ${topics.length} single-node topic(s) (${topics.slice(0, 3).join(', ')}${topics.length > 3 ? ', …' : ''}); a cluster member starts on an empty data directory`,
    );
  const path = join(dataDir, IDENTITY_FILE);
  const tmp = `${path}.tmp`;
  await nodeStorageFs.writeFile(tmp, Buffer.from(`${JSON.stringify({ version: 1, ...identity })}\n`));
  await nodeStorageFs.rename(tmp, path);
  await nodeStorageFs.syncDirectory(dataDir);
}
