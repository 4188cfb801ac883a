import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  BENCH_DEFAULTS,
  type BenchFlags,
  benchOptionNotes,
  parseBenchOptions,
} from '../../src/bench/options.js';
import { run } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/output.js';

const defaults: BenchFlags = { ...BENCH_DEFAULTS, duration: undefined };
const parse = (flags: Partial<BenchFlags>, brokerFlag = false, cores = 2) =>
  parseBenchOptions({ ...defaults, ...flags }, { brokerFlag, cores });

async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: () => {}, err: (t) => err.push(t) });
  return { code, err: err.join('\n') };
}

describe('bench options', () => {
  it('has documented defaults: external broker, 100-byte messages, 10 s after 1 s warmup at max rate', () => {
    expect(parse({})).toEqual({
      mode: 'external',
      size: 100,
      producers: 1,
      consumers: 1,
      topics: 1,
      partitions: 1,
      replicationFactor: 1,
      streams: 0,
      batchBytes: 524288,
      lingerMs: 0,
      compression: 'none',
      acks: 1,
      durability: 'interval',
      rate: null,
      durationS: 10,
      warmupS: 1,
      messages: null,
      pacing: 'block',
      dataDir: null,
    });
  });

  it('spins a fixed-rate producer only when every thread can have a core, unless told', () => {
    expect(parse({}, false, 4).pacing).toBe('spin');
    expect(parse({}, false, 3).pacing).toBe('block');
    expect(parse({ producers: '4', consumers: '1' }, false, 6).pacing).toBe('block');
    expect(parse({ pacing: 'spin' }, false, 1).pacing).toBe('spin');
    expect(parse({ pacing: 'block' }, false, 64).pacing).toBe('block');
  });

  it('parses every flag, decimals for seconds and rate', () => {
    const options = parse({
      embedded: true,
      size: '512',
      producers: '3',
      consumers: '2',
      topics: '2',
      partitions: '4',
      streams: '1000',
      batchBytes: '65536',
      lingerMs: '5',
      compression: 'zstd',
      acks: '0',
      durability: 'never',
      rate: '2500.5',
      duration: '0.5',
      warmup: '0',
    });
    expect(options).toMatchObject({
      mode: 'embedded',
      size: 512,
      producers: 3,
      consumers: 2,
      topics: 2,
      partitions: 4,
      streams: 1000,
      batchBytes: 65536,
      lingerMs: 5,
      compression: 'zstd',
      acks: 0,
      durability: 'never',
      rate: 2500.5,
      durationS: 0.5,
      warmupS: 0,
    });
    expect(parse({ spawn: true, messages: '1000' })).toMatchObject({
      mode: 'spawn',
      messages: 1000,
      durationS: null,
    });
  });

  it.each([
    [{ size: '4' }, /--size "4": an integer from 8 to 1048576/],
    [{ size: 'big' }, /--size "big"/],
    [{ producers: '0' }, /--producers "0": an integer from 1 to 256/],
    [{ consumers: '3', partitions: '2' }, /--consumers 3: at most topics × partitions = 2/],
    [{ compression: 'brotli' }, /--compression "brotli": one of none, gzip, snappy, lz4, zstd/],
    [{ acks: '2' }, /--acks "2": one of 0, 1, all/],
    [{ durability: 'sometimes' }, /--durability "sometimes": one of never, interval, always$/],
    [{ rate: '0' }, /--rate "0": a number greater than 0/],
    [{ rate: '-5' }, /--rate "-5"/],
    [{ duration: '1s' }, /--duration "1s": a number greater than 0/],
    [{ warmup: '-1' }, /--warmup "-1": a number from 0/],
    [{ messages: '0' }, /--messages "0": an integer from 1/],
    [{ duration: '5', messages: '10' }, /--duration and --messages cannot be combined/],
    [{ embedded: true, spawn: true }, /--embedded and --spawn cannot be combined/],
    [{ dataDir: '/tmp' }, /--data-dir needs --embedded or --spawn/],
    [{ pacing: 'nap' }, /--pacing "nap": one of auto, spin, block/],
  ] as const)('refuses %o', (flags, message) => {
    expect(() => parse(flags)).toThrow(InvalidArgumentError);
    expect(() => parse(flags)).toThrow(message);
  });

  it('takes --acks 0, 1 and all', () => {
    expect(parse({ acks: '0' }).acks).toBe(0);
    expect(parse({ acks: '1' }).acks).toBe(1);
    expect(parse({ acks: 'all' }).acks).toBe('all');
  });

  it("names durability policies as topics do (never, interval, always) and still takes the old 'none'", async () => {
    expect(parse({ durability: 'never' }).durability).toBe('never');
    expect(benchOptionNotes({ ...defaults, durability: 'never' })).toEqual([]);
    expect(parse({ durability: 'none' }).durability).toBe('never');
    expect(benchOptionNotes({ ...defaults, durability: 'none' })).toEqual([
      expect.stringMatching(/--durability none is now spelled never/),
    ]);
    const help: string[] = [];
    await run(['bench', '--help'], { env: {}, out: (t) => help.push(t), err: (t) => help.push(t) });
    expect(help.join('\n')).toMatch(/--durability <policy>\s+never \| interval \| always/);
    expect(help.join('\n')).not.toMatch(/\bnone \| interval/);
  });

  it('refuses --broker together with a broker the bench starts itself', () => {
    expect(() => parse({ spawn: true }, true)).toThrow(/--broker and --spawn cannot be combined/);
  });

  it('exits 2 with the reason on the command line, before touching any broker', async () => {
    // 127.0.0.1:1 is unreachable: exit 2 (not 3) shows validation came first.
    const bad = await cli('--broker', '127.0.0.1:1', 'bench', '--compression', 'brotli');
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toMatch(/--compression "brotli": one of none, gzip, snappy, lz4, zstd/);
    const both = await cli('bench', '--embedded', '--spawn');
    expect(both.code).toBe(EXIT.usage);
    expect(both.err).toMatch(/--embedded and --spawn cannot be combined/);
    const tooSmall = await cli('bench', '--embedded', '--size', '7');
    expect(tooSmall.code).toBe(EXIT.usage);
    expect(tooSmall.err).toMatch(/--size "7"/);
    expect((await cli('bench', '--embedded', '--no-such-flag')).code).toBe(EXIT.usage);
  });
});
