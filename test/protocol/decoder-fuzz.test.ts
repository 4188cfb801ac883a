// The decoder fuzz of the reliability battery, counted: ≥ 1,000,000 inputs when CI=true (100,000
// otherwise, or FUZZ_INPUTS=N), from a seeded generator so a failure names its seed and input.
// Inputs: random bytes, boundary lengths (declared payload lengths 0, 1, limit, limit + 1,
// 2^31, 2^32 − 1 under a valid header CRC), and valid frames with 1–4 bytes mutated; each decoded
// whole and again in random chunks. Pass: only typed protocol errors, the chunked decode equals
// the whole one, and no input takes 100 ms (best of
// three for an input whose first timing is slow). (The fast-check fuzz in frame-decoder.test.ts shrinks
// failures; this one is for volume.)

import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { crc32cOf } from '../../src/protocol/crc32c-small.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import { encodeFrame, FrameFlags, HEADER_OFFSETS } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';

const INPUTS = Number(process.env.FUZZ_INPUTS ?? (process.env.CI === 'true' ? 1_000_000 : 100_000));
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const limits = { maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 64 * 1024 };

/** xorshift32: fast, seeded, good enough to pick bytes and cuts. */
function generator(seed: number): () => number {
  let state = seed === 0 ? 0x9e3779b9 : seed >>> 0;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

const VALID = [
  encodeFrame({ opcode: Opcode.PING, correlationId: 1 }),
  encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 2, priority: 9 }, Buffer.from('payload bytes')),
  encodeFrame(
    { opcode: Opcode.FETCH, correlationId: 3, flags: FrameFlags.RESPONSE | FrameFlags.PAYLOAD_SELF_CRC },
    Buffer.alloc(200, 3),
  ),
  encodeFrame({ opcode: 0x7777, correlationId: 4 }, Buffer.alloc(10, 1)),
];
const STREAM = Buffer.concat(VALID);
const BOUNDARY_LENGTHS = [
  0,
  1,
  limits.maxControlPayloadBytes,
  limits.maxControlPayloadBytes + 1,
  limits.maxPayloadBytes,
  limits.maxPayloadBytes + 1,
  2 ** 31,
  2 ** 32 - 1,
];

/** A valid header that declares `length` bytes (CRC recomputed), followed by a few payload bytes. */
function declaring(length: number, opcode: number, random: () => number): Buffer {
  const frame = Buffer.from(encodeFrame({ opcode, correlationId: random() }, Buffer.alloc(4)));
  frame.writeUInt32LE(length >>> 0, HEADER_OFFSETS.payloadLength);
  frame.writeUInt32LE(crc32cOf(frame, 0, HEADER_OFFSETS.headerCrc), HEADER_OFFSETS.headerCrc);
  return frame;
}

function input(random: () => number): Buffer {
  const kind = random() % 3;
  if (kind === 0) {
    const bytes = Buffer.allocUnsafe(random() % 300);
    for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;
    // Half of them start with the magic, so the header checks behind it get exercised too.
    if (random() & 1 && bytes.length >= 4) bytes.write('MSTR', 0, 'latin1');
    return bytes;
  }
  if (kind === 1) {
    const length = BOUNDARY_LENGTHS[random() % BOUNDARY_LENGTHS.length]!;
    const opcode = random() & 1 ? Opcode.PRODUCE : Opcode.PING;
    return declaring(length, opcode, random);
  }
  const mutated = Buffer.from(STREAM);
  for (let n = 1 + (random() % 4); n > 0; n--) {
    const at = random() % mutated.length;
    mutated[at] = mutated[at]! ^ (1 + (random() % 255));
  }
  return mutated;
}

interface Outcome {
  frames: string;
  error: number | null;
}

function decode(bytes: Buffer, random: (() => number) | null): Outcome {
  const decoder = new FrameDecoder(limits);
  const seen: string[] = [];
  let at = 0;
  try {
    while (at < bytes.length) {
      const size = random === null ? bytes.length : 1 + (random() % 64);
      decoder.push(bytes.subarray(at, at + size));
      at += size;
      for (let f = decoder.next(); f !== null; f = decoder.next())
        seen.push(`${f.header.opcode}:${f.header.correlationId}:${f.payload.length}:${f.payloadCrcValid}`);
    }
    return { frames: seen.join(','), error: null };
  } catch (error) {
    if (!(error instanceof MemoryStreamerError)) throw error;
    return { frames: seen.join(','), error: error.code };
  }
}

const SLOW_MS = 100;

/** Wall time of decoding `bytes` whole and in chunks cut by a generator seeded from its index. */
function timeDecode(bytes: Buffer, n: number): number {
  const started = performance.now();
  decode(bytes, null);
  decode(bytes, generator(n + 1));
  return performance.now() - started;
}

describe('frame decoder fuzz (counted)', () => {
  it(`decodes ${INPUTS.toLocaleString('en-US')} random, boundary and mutated inputs with typed errors only`, () => {
    const random = generator(SEED);
    const errors = new Map<number, number>();
    let slowest = 0;
    for (let n = 0; n < INPUTS; n++) {
      const bytes = input(random);
      const started = performance.now();
      const whole = decode(bytes, null);
      const chunked = decode(bytes, random);
      let took = performance.now() - started;
      // One sample can include a GC pause or a descheduled CPU on a loaded machine; a pathological
      // input is slow every time, so a slow one is timed again (best of three) before it counts.
      if (took >= SLOW_MS) took = Math.min(took, ...[0, 1, 2].map(() => timeDecode(bytes, n)));
      if (took > slowest) slowest = took;
      if (whole.frames !== chunked.frames || whole.error !== chunked.error) {
        throw new Error(
          `seed ${SEED}, input ${n} (${bytes.toString('hex')}): whole ${JSON.stringify(whole)} ≠ chunked ${JSON.stringify(chunked)}`,
        );
      }
      if (whole.error !== null) errors.set(whole.error, (errors.get(whole.error) ?? 0) + 1);
    }
    console.log(
      `decoder fuzz: ${INPUTS} inputs (seed ${SEED}), slowest ${slowest.toFixed(2)} ms, errors by code ${JSON.stringify(Object.fromEntries(errors))}`,
    );
    expect(slowest).toBeLessThan(SLOW_MS);
    // The generator reaches the interesting refusals, not only BAD_MAGIC.
    for (const code of [100, 102, 105]) expect(errors.get(code) ?? 0, `error ${code}`).toBeGreaterThan(0);
  }, 600_000);
});
