// Chooses the partition of a message: an explicit partition wins, a key hashes to a fixed partition
// (so a key's stream always lives in one partition), and unkeyed messages rotate. Clients produce
// with it; the broker uses the same hash to find the partition of a stream.
// The key hash is Kafka's murmur2 (positive part modulo the partition count), so a key lands in the
// partition a Kafka producer would pick, which keeps a migration's per-key order intact.

const MURMUR2_SEED = 0x9747b28c;
const MURMUR2_M = 0x5bd1e995;

/** Kafka's 32-bit murmur2 of the key bytes, as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = MURMUR2_SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24) | 0;
    k = Math.imul(k, MURMUR2_M);
    k ^= k >>> 24;
    k = Math.imul(k, MURMUR2_M);
    h = Math.imul(h, MURMUR2_M) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= data[whole + 2]! << 16;
  if (rest >= 2) h ^= data[whole + 1]! << 8;
  if (rest >= 1) {
    h ^= data[whole]!;
    h = Math.imul(h, MURMUR2_M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, MURMUR2_M);
  h ^= h >>> 15;
  return h | 0;
}

export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** Round-robin over partitions for messages without key or explicit partition, one counter per topic. */
export class RoundRobinPartitioner {
  private readonly counters = new Map<string, number>();

  next(topic: string, partitions: number): number {
    const counter = this.counters.get(topic) ?? 0;
    this.counters.set(topic, (counter + 1) % 0x40000000);
    return counter % partitions;
  }
}
