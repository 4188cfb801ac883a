import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { type Frame, FrameDecoder } from '../../src/protocol/frame-decoder.js';
import {
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameFlags,
  readFrameHeader,
} from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';

const limits = { maxPayloadBytes: 1 << 20, maxControlPayloadBytes: 64 * 1024 };

function sampleFrames(): Buffer[] {
  return [
    encodeFrame({ opcode: Opcode.PING, correlationId: 1, timestamp: 5 }),
    encodeFrame(
      { opcode: Opcode.PRODUCE, correlationId: 2, channelId: 0, priority: 3, timestamp: 6 },
      Buffer.from('hello world'),
    ),
    encodeFrame(
      {
        opcode: Opcode.FETCH,
        correlationId: 3,
        flags: FrameFlags.RESPONSE | FrameFlags.PAYLOAD_SELF_CRC,
        timestamp: 7,
      },
      Buffer.alloc(300, 7),
    ),
  ];
}

function drain(decoder: FrameDecoder): Frame[] {
  const frames: Frame[] = [];
  for (let frame = decoder.next(); frame !== null; frame = decoder.next()) frames.push(frame);
  return frames;
}

function summary(frames: Frame[]) {
  return frames.map((f) => ({
    ...f.header,
    payload: Buffer.from(f.payload).toString('hex'),
    ok: f.payloadCrcValid,
  }));
}

function decodeOne(bytes: Buffer): Frame {
  const decoder = new FrameDecoder(limits);
  decoder.push(bytes);
  return decoder.next()!;
}

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof MemoryStreamerError) return error.code;
    throw error;
  }
  return undefined;
}

describe('frame header', () => {
  it('round-trips every field', () => {
    const frame = encodeFrame(
      {
        opcode: 0x0201,
        correlationId: 0xfffffffe,
        channelId: 9,
        flags: FrameFlags.PUSH,
        errorCode: 300,
        priority: 255,
        timestamp: 123456789,
      },
      Buffer.from('abc'),
    );
    expect(frame.length).toBe(FRAME_HEADER_SIZE + 3);
    expect(frame.subarray(0, 4).toString('latin1')).toBe('MSTR');
    const header = readFrameHeader(frame);
    expect(header).toMatchObject({
      version: 1,
      opcode: 0x0201,
      correlationId: 0xfffffffe,
      channelId: 9,
      flags: FrameFlags.PUSH,
      errorCode: 300,
      priority: 255,
      timestamp: 123456789,
      payloadLength: 3,
    });
  });
});

describe('FrameDecoder', () => {
  const whole = Buffer.concat(sampleFrames());

  it('decodes whole input into views without copying', () => {
    const decoder = new FrameDecoder(limits);
    decoder.push(whole);
    const frames = drain(decoder);
    expect(frames).toHaveLength(3);
    expect(frames[1]!.payload.toString()).toBe('hello world');
    expect(frames[1]!.payload.buffer).toBe(whole.buffer);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.hasPartialFrame).toBe(false);
  });

  it('gives the same frames when fed one byte at a time and at every split point', () => {
    const reference = (() => {
      const d = new FrameDecoder(limits);
      d.push(whole);
      return summary(drain(d));
    })();
    const byteWise = new FrameDecoder(limits);
    const frames: Frame[] = [];
    for (let i = 0; i < whole.length; i++) {
      byteWise.push(whole.subarray(i, i + 1));
      frames.push(...drain(byteWise));
    }
    expect(summary(frames)).toEqual(reference);
    for (let split = 1; split < whole.length; split++) {
      const d = new FrameDecoder(limits);
      d.push(whole.subarray(0, split));
      const got = drain(d);
      d.push(whole.subarray(split));
      got.push(...drain(d));
      expect(summary(got)).toEqual(reference);
    }
  });

  it('rejects bad magic at the first byte', () => {
    const d = new FrameDecoder(limits);
    d.push(Buffer.from('X'));
    expect(codeOf(() => d.next())).toBe(ErrorCode.BAD_MAGIC);
    expect(codeOf(() => d.next())).toBe(ErrorCode.BAD_MAGIC);
  });

  it('rejects a corrupted header, an unknown version and unknown flags', () => {
    const frame = encodeFrame({ opcode: Opcode.PING });
    const corrupted = Buffer.from(frame);
    corrupted[10] = (corrupted[10] ?? 0) ^ 1;
    const d1 = new FrameDecoder(limits);
    d1.push(corrupted);
    expect(codeOf(() => d1.next())).toBe(ErrorCode.BAD_HEADER_CRC);

    const d2 = new FrameDecoder(limits);
    d2.push(encodeFrame({ opcode: Opcode.PING, version: 9 }));
    expect(codeOf(() => d2.next())).toBe(ErrorCode.UNSUPPORTED_VERSION);

    const d3 = new FrameDecoder(limits);
    d3.push(encodeFrame({ opcode: Opcode.PING, flags: 0x80 }));
    expect(codeOf(() => d3.next())).toBe(ErrorCode.BAD_FLAGS);
  });

  it('rejects declared lengths over the limit before allocating, up to 2^32-1', () => {
    const frame = encodeFrame({ opcode: Opcode.PRODUCE }, Buffer.alloc(0));
    // Rewrite the declared length and the header CRC so only the length is wrong.
    for (const declared of [limits.maxPayloadBytes + 1, 0xffffffff]) {
      const forged = Buffer.from(frame);
      forged.writeUInt32LE(declared, 16);
      forged.writeUInt32LE(crc32c(forged.subarray(0, 36)), 36);
      const d = new FrameDecoder(limits);
      d.push(forged);
      expect(codeOf(() => d.next())).toBe(ErrorCode.FRAME_TOO_LARGE);
      expect(d.bufferedBytes).toBe(0);
    }
    const control = new FrameDecoder(limits);
    control.push(
      encodeFrame({ opcode: Opcode.CREATE_TOPIC }, Buffer.alloc(limits.maxControlPayloadBytes + 1)),
    );
    expect(codeOf(() => control.next())).toBe(ErrorCode.FRAME_TOO_LARGE);
  });

  it('holds only the bytes that arrived of a frame in progress, not its declared length', () => {
    const declared = 8 * 1024 * 1024 - 1024;
    const big = { maxPayloadBytes: 8 * 1024 * 1024, maxControlPayloadBytes: 64 * 1024 };
    const frame = encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 9 }, Buffer.alloc(declared, 3));
    const before = process.memoryUsage().arrayBuffers;
    // 100 frames in progress, each with its header and 10 payload bytes received.
    const decoders = Array.from({ length: 100 }, () => {
      const decoder = new FrameDecoder(big);
      decoder.push(frame.subarray(0, FRAME_HEADER_SIZE));
      expect(decoder.next()).toBeNull();
      decoder.push(frame.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + 10));
      expect(decoder.next()).toBeNull();
      expect(decoder.bufferedBytes).toBe(10);
      expect(decoder.hasPartialFrame).toBe(true);
      return decoder;
    });
    // Allocating the declared payloads up front would take 100 × 8 MiB.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
    // The rest arrives in pieces of every size; the frame comes out whole and exact.
    const decoder = decoders[0]!;
    let at = FRAME_HEADER_SIZE + 10;
    for (const size of [1, 7, 1000, 5, 65_536, 3]) {
      decoder.push(frame.subarray(at, at + size));
      at += size;
      expect(decoder.next()).toBeNull();
      expect(decoder.bufferedBytes).toBe(at - FRAME_HEADER_SIZE);
    }
    decoder.push(frame.subarray(at));
    const decoded = decoder.next()!;
    expect(decoded.payloadCrcValid).toBe(true);
    expect(decoded.payload.equals(frame.subarray(FRAME_HEADER_SIZE))).toBe(true);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.hasPartialFrame).toBe(false);
    expect(decoder.framesDecoded).toBe(1);
  });

  it('gathers a frame sent a few bytes at a time into few buffers, with exact views', () => {
    const decoder = new FrameDecoder(limits);
    const frames = sampleFrames();
    const stream = Buffer.concat([...frames, ...frames]);
    const out: Frame[] = [];
    for (let at = 0; at < stream.length; at += 3) {
      decoder.push(stream.subarray(at, at + 3));
      out.push(...drain(decoder));
    }
    expect(summary(out)).toEqual(summary([...frames, ...frames].map((f) => decodeOne(f))));
    expect(decoder.framesDecoded).toBe(6);
  });

  it('returns a frame with a bad payload CRC as invalid and keeps decoding', () => {
    const first = encodeFrame({ opcode: Opcode.PRODUCE, correlationId: 1 }, Buffer.from('payload'));
    first[FRAME_HEADER_SIZE] = 0x50;
    const second = encodeFrame({ opcode: Opcode.PING, correlationId: 2 });
    const d = new FrameDecoder(limits);
    d.push(Buffer.concat([first, second]));
    const frames = drain(d);
    expect(frames.map((f) => f.payloadCrcValid)).toEqual([false, true]);
  });

  it('only ever throws typed errors on random bytes and mutated frames, in any chunking', () => {
    const valid = Buffer.concat(sampleFrames());
    const budgetMs = process.env.CI === 'true' ? 20_000 : 1500;
    const started = Date.now();
    let runs = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const m = Buffer.from(valid);
            m[at] = (m[at] ?? 0) ^ x;
            return new Uint8Array(m);
          }),
        ),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (bytes, cuts) => {
          runs++;
          const input = Buffer.from(bytes);
          const whole = decodeAll(input, [input.length]);
          const chunked = decodeAll(input, cuts);
          expect(chunked).toEqual(whole);
        },
      ),
      { numRuns: 1_000_000, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false },
    );
    expect(runs).toBeGreaterThan(100);
    expect(Date.now() - started).toBeLessThan(budgetMs + 5000);
  });
});

function decodeAll(input: Buffer, cuts: number[]): { frames: unknown[]; error: number | null } {
  const d = new FrameDecoder(limits);
  const frames: Frame[] = [];
  let at = 0;
  let i = 0;
  try {
    while (at < input.length) {
      const size = cuts[i++ % cuts.length]!;
      d.push(input.subarray(at, at + size));
      at += size;
      for (let frame = d.next(); frame !== null; frame = d.next()) frames.push(frame);
    }
    return { frames: summary(frames), error: null };
  } catch (error) {
    if (!(error instanceof MemoryStreamerError)) throw error;
    return { frames: summary(frames), error: error.code };
  }
}
