// Where a group's state lives. Its committed offsets are records of one `__consumer_offsets`
// partition, chosen by the group id's hash (the key hash of the partitioner, so every broker and
// every version agrees); in a cluster the leader of that partition coordinates the group, so the
// coordinator moves with that partition's leadership.

import { errorOf } from '../../protocol/error-codes.js';
import { partitionForKey } from '../../protocol/partitioner.js';

const GROUP_ID = /^[A-Za-z0-9._-]{1,200}$/;

/** Throws INVALID_GROUP_ID unless `groupId` is 1-200 of [A-Za-z0-9._-]. */
export function validateGroupId(groupId: string): void {
  if (!GROUP_ID.test(groupId))
    throw errorOf('INVALID_GROUP_ID', `${JSON.stringify(groupId)}: 1-200 of [A-Za-z0-9._-]`);
}

/** The `__consumer_offsets` partition (of `partitions`) that holds `groupId`'s offsets. */
export function groupOffsetsPartition(groupId: string, partitions: number): number {
  return partitionForKey(Buffer.from(groupId, 'utf8'), partitions);
}
