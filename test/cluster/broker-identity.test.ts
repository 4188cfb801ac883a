import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimIdentity, IDENTITY_FILE, readIdentity } from '../../src/cluster/broker-identity.js';
import { makeTempDir, removeTempDir } from '../harness/temp-dir.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('ms-identity-');
});
afterEach(async () => {
  await removeTempDir(dir);
});

describe('broker identity', () => {
  it('is written on first use and accepted again', async () => {
    expect(await readIdentity(dir)).toBeNull();
    await claimIdentity(dir, { clusterId: 'c1', brokerId: 2 });
    expect(await readIdentity(dir)).toEqual({ clusterId: 'c1', brokerId: 2 });
    expect(JSON.parse(await readFile(join(dir, IDENTITY_FILE), 'utf8'))).toEqual({
      version: 1,
      clusterId: 'c1',
      brokerId: 2,
    });
    await claimIdentity(dir, { clusterId: 'c1', brokerId: 2 });
  });

  it('refuses another cluster or broker id, naming both', async () => {
    await claimIdentity(dir, { clusterId: 'c1', brokerId: 2 });
    await expect(claimIdentity(dir, { clusterId: 'c2', brokerId: 2 })).rejects.toMatchObject({
      codeName: 'CLUSTER_ID_MISMATCH',
      message: expect.stringContaining('belongs to cluster c1, not c2'),
    });
    await expect(claimIdentity(dir, { clusterId: 'c1', brokerId: 3 })).rejects.toThrow(
      'belongs to broker 2, not 3 (start it with --broker-id 2)',
    );
  });

  it('refuses a directory with single-node topics', async () => {
    await mkdir(join(dir, 'topics', 'orders'), { recursive: true });
    await expect(claimIdentity(dir, { clusterId: 'c1', brokerId: 1 })).rejects.toThrow(
      'holds 1 single-node topic(s) (orders)',
    );
    expect(await readIdentity(dir)).toBeNull();
  });

  it.each([
    ['{', 'not valid JSON'],
    ['{"version":2,"clusterId":"c","brokerId":1}', 'version 1'],
    ['{"version":1,"clusterId":"","brokerId":1}', 'version 1'],
    ['{"version":1,"clusterId":"c","brokerId":-1}', 'version 1'],
  ])('refuses a damaged identity file %s', async (text, message) => {
    await writeFile(join(dir, IDENTITY_FILE), text);
    await expect(readIdentity(dir)).rejects.toThrow(message);
  });
});
