// Sticky assignment: the target is balanced like range (every member gets ⌊n/m⌋ or ⌈n/m⌉
// partitions of the topics it reads), but a partition stays with its current owner whenever the
// balance allows, so a rebalance moves as few partitions as possible.

import type { TopicPartitions } from '../../protocol/commands/data-types.js';
import type { AssignableMember } from './range-assignor.js';

export interface OwnedMember extends AssignableMember {
  owned: readonly TopicPartitions[];
}

export function assignSticky(
  members: readonly OwnedMember[],
  partitionsOf: (topic: string) => number,
): Map<string, TopicPartitions[]> {
  const result = new Map<string, Map<string, number[]>>(members.map((m) => [m.memberId, new Map()]));
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const subscribers = members
      .filter((m) => m.topics.includes(topic))
      .sort((a, b) => a.memberId.localeCompare(b.memberId));
    const count = partitionsOf(topic);
    const base = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    const quota = new Map(subscribers.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
    const taken = new Set<number>();
    const assigned = new Map<string, number[]>(subscribers.map((m) => [m.memberId, []]));
    // Keep what members already own, up to their quota.
    for (const member of subscribers) {
      const owned = member.owned.find((o) => o.topic === topic)?.partitions ?? [];
      for (const partition of [...owned].sort((a, b) => a - b)) {
        const mine = assigned.get(member.memberId)!;
        if (partition < count && !taken.has(partition) && mine.length < quota.get(member.memberId)!) {
          mine.push(partition);
          taken.add(partition);
        }
      }
    }
    // Give the rest to whoever is below quota, in member order.
    let next = 0;
    for (const member of subscribers) {
      const mine = assigned.get(member.memberId)!;
      while (mine.length < quota.get(member.memberId)!) {
        while (taken.has(next)) next++;
        mine.push(next);
        taken.add(next);
      }
    }
    for (const [memberId, partitions] of assigned) {
      if (partitions.length > 0)
        result.get(memberId)!.set(
          topic,
          partitions.sort((a, b) => a - b),
        );
    }
  }
  return new Map(
    [...result].map(([memberId, byTopic]) => [
      memberId,
      [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    ]),
  );
}
