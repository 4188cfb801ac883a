// Range assignment, per topic: the members subscribed to a topic, sorted by id, each take a
// contiguous range of its partitions; the first (partitions mod members) members take one more.
// Deterministic, so every member and the describe output agree on who owns what.

import type { TopicPartitions } from '../../protocol/commands/data-types.js';

export interface AssignableMember {
  memberId: string;
  topics: readonly string[];
}

export function assignRange(
  members: readonly AssignableMember[],
  partitionsOf: (topic: string) => number,
): Map<string, TopicPartitions[]> {
  const result = new Map<string, TopicPartitions[]>(members.map((m) => [m.memberId, []]));
  const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const subscribers = members
      .filter((m) => m.topics.includes(topic))
      .map((m) => m.memberId)
      .sort();
    const count = partitionsOf(topic);
    const base = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    let next = 0;
    subscribers.forEach((memberId, i) => {
      const take = base + (i < extra ? 1 : 0);
      if (take === 0) return;
      const partitions = Array.from({ length: take }, (_, j) => next + j);
      next += take;
      result.get(memberId)!.push({ topic, partitions });
    });
  }
  return result;
}
