// Reads every copy of a partition from the brokers' data directories after they stopped, with the
// storage layer's own reader (CRC-checked batches, the recovered log end): the raw batches, the
// records in them, and the high watermark the broker checkpointed when it stopped.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { iterateRecords, splitBatches } from '../../src/protocol/record-batch.js';
import { readHighWatermarkCheckpoint } from '../../src/storage/high-watermark-file.js';
import { PartitionLog } from '../../src/storage/partition-log.js';
import { nodeStorageFs } from '../../src/storage/storage-fs.js';

export interface ReplicaRecord {
  readonly offset: bigint;
  readonly key: string | null;
  readonly value: string;
}

export interface ReplicaBatch {
  readonly baseOffset: bigint;
  readonly lastOffset: bigint;
  readonly bytes: Buffer;
}

export interface ReplicaLog {
  readonly broker: number;
  /** Checkpointed at the broker's stop; null when it wrote none. */
  readonly highWatermark: bigint | null;
  readonly logEndOffset: bigint;
  readonly batches: readonly ReplicaBatch[];
  readonly records: readonly ReplicaRecord[];
}

const LIMITS = { maxDecompressedBytes: 64 * 1024 * 1024 };
const READ_BYTES = 1024 * 1024;

export function partitionDir(dataDir: string, topic: string, partition: number): string {
  return join(dataDir, 'topics', topic, String(partition));
}

/** The copy of `topic`/`partition` in `dataDir`, or null when this broker holds none. */
export async function readReplica(
  broker: number,
  dataDir: string,
  topic: string,
  partition: number,
): Promise<ReplicaLog | null> {
  const dir = partitionDir(dataDir, topic, partition);
  if (!existsSync(dir)) return null;
  const checkpoint = await readHighWatermarkCheckpoint(nodeStorageFs, dir);
  // Everything written is readable: the high watermark of this read is the log end.
  const log = await PartitionLog.open({ dir, highWatermark: 1n << 62n });
  try {
    const batches: ReplicaBatch[] = [];
    const records: ReplicaRecord[] = [];
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const result = await log.read(offset, READ_BYTES);
      if (result.data.length === 0) break;
      for (const batch of splitBatches(result.data)) {
        const copy = Buffer.from(batch);
        // Byte layout: record-batch-layout.ts (baseOffset at 0, lastOffsetDelta at 23).
        const baseOffset = copy.readBigInt64BE(0);
        const lastOffset = baseOffset + BigInt(copy.readInt32BE(23));
        for (const record of iterateRecords(copy, LIMITS)) {
          records.push({
            offset: record.offset,
            key: record.key?.toString('utf8') ?? null,
            value: record.value?.toString('utf8') ?? '',
          });
        }
        batches.push({ baseOffset, lastOffset, bytes: copy });
      }
      offset = result.nextOffset;
    }
    return {
      broker,
      highWatermark: checkpoint.state === 'ok' ? checkpoint.offset : null,
      logEndOffset: log.logEndOffset,
      batches,
      records,
    };
  } finally {
    await log.close();
  }
}
