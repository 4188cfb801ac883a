// Where a new topic's replicas go. Replicas of one partition are on distinct brokers; leadership
// (the first replica, the preferred leader) rotates over the brokers partition by partition; the
// followers of consecutive rounds are shifted, so that when one broker fails its partitions'
// leadership moves to several different brokers instead of all landing on one neighbour.
//
//   brokers 1 2 3 4, RF 3, start 0:
//   p0: 1 2 3   p1: 2 3 4   p2: 3 4 1   p3: 4 1 2      (shift 0: followers are the next brokers)
//   p4: 1 3 4   p5: 2 4 1   p6: 3 1 2   p7: 4 2 3      (shift 1: followers skip one)
//
// Pure: the caller gives the live brokers and a start index (random in production, fixed in tests).

import { errorOf } from '../../protocol/error-codes.js';

export function assignReplicas(
  brokerIds: readonly number[],
  partitions: number,
  replicationFactor: number,
  start = 0,
  firstPartition = 0,
): number[][] {
  const brokers = [...new Set(brokerIds)].sort((a, b) => a - b);
  if (replicationFactor < 1)
    throw errorOf('INVALID_CONFIG', `replicationFactor ${replicationFactor} must be at least 1`);
  if (replicationFactor > brokers.length)
    throw errorOf(
      'INVALID_CONFIG',
      `replicationFactor ${replicationFactor} is larger than the ${brokers.length} live broker(s) (${brokers.join(', ') || 'none'})`,
    );
  const n = brokers.length;
  const assignment: number[][] = [];
  for (let p = firstPartition; p < firstPartition + partitions; p++) {
    const first = (start + p) % n;
    const shift = n > 1 ? Math.floor(p / n) % (n - 1) : 0;
    const replicas = [brokers[first]!];
    for (let j = 0; j < replicationFactor - 1; j++)
      replicas.push(brokers[(first + 1 + ((shift + j) % (n - 1))) % n]!);
    assignment.push(replicas);
  }
  return assignment;
}
