// Hands out producer ids that are unique for the life of the data directory. Ids are reserved in
// blocks: the file records the first id of the next block, written durably before any id of the
// current block is given out, so a crash can skip ids but never reuse one.
//
// File `producer-ids.json`: { "nextBlockStart": "<decimal bigint>" }

import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../../protocol/error-codes.js';

const FILE_NAME = 'producer-ids.json';
export const PRODUCER_ID_BLOCK = 1000n;

export class ProducerIdAllocator {
  private next = 0n;
  private blockEnd = 0n;
  private reserving: Promise<void> | null = null;

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<ProducerIdAllocator> {
    await mkdir(dir, { recursive: true });
    const allocator = new ProducerIdAllocator(dir);
    try {
      const parsed = JSON.parse(await readFile(join(dir, FILE_NAME), 'utf8')) as { nextBlockStart?: unknown };
      if (typeof parsed.nextBlockStart !== 'string' || !/^\d+$/.test(parsed.nextBlockStart)) {
        throw errorOf('CORRUPT_DATA', `${FILE_NAME}: nextBlockStart is not a decimal integer`);
      }
      allocator.next = BigInt(parsed.nextBlockStart);
      allocator.blockEnd = allocator.next;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (error instanceof SyntaxError)
          throw errorOf('CORRUPT_DATA', `${FILE_NAME} is not valid JSON`, { cause: error });
        throw error;
      }
    }
    return allocator;
  }

  async allocate(): Promise<bigint> {
    while (this.next >= this.blockEnd) {
      if (this.reserving === null) {
        this.reserving = this.reserveBlock().finally(() => {
          this.reserving = null;
        });
      }
      await this.reserving;
    }
    const id = this.next;
    this.next += 1n;
    return id;
  }

  private async reserveBlock(): Promise<void> {
    const end = this.blockEnd + PRODUCER_ID_BLOCK;
    const path = join(this.dir, FILE_NAME);
    const handle = await open(`${path}.tmp`, 'w');
    try {
      await handle.writeFile(JSON.stringify({ nextBlockStart: end.toString() }));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(`${path}.tmp`, path);
    this.next = this.blockEnd;
    this.blockEnd = end;
  }
}
