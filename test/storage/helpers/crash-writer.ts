// Child process for the crash test: appends batches with durability `always` to the log in
// argv[2], and prints "ack <baseOffset> <value>" for every acknowledged one, until it is killed.
import { encodeRecordBatch } from '../../../src/protocol/record-batch.js';
import { PartitionLog } from '../../../src/storage/partition-log.js';

const dir = process.argv[2]!;
const log = await PartitionLog.open({
  dir,
  config: { durability: 'always', segmentBytes: 64 * 1024, indexIntervalBytes: 512 },
});
process.stdout.write(`ready ${log.logEndOffset}\n`);
let counter = 0;
for (;;) {
  const pending = [];
  for (let i = 0; i < 8; i++) {
    const value = `${process.pid}-${counter++}-${'x'.repeat(counter % 300)}`;
    const ticket = log.append(
      encodeRecordBatch([{ key: `k${counter % 13}`, value }, { value: `${value}-second` }]),
    );
    pending.push(ticket.done.then(() => process.stdout.write(`ack ${ticket.baseOffset} ${value}\n`)));
  }
  await Promise.all(pending);
}
