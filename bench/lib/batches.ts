// Record batches for the storage benchmarks: `records` records of `valueBytes` each, no keys, one
// fixed timestamp — the bytes a producer of 100-byte messages hands the log.
import { RecordBatchBuilder } from '../../src/protocol/record-batch.js';

export function makeBatch(records: number, valueBytes: number): Buffer {
  const builder = new RecordBatchBuilder(records * (valueBytes + 16) + 128);
  const value = Buffer.alloc(valueBytes, 0x62);
  for (let i = 0; i < records; i++) builder.append({ value, timestamp: 1_700_000_000_000 });
  return builder.finish();
}
