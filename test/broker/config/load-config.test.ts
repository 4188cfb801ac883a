import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig } from '../../../src/broker/config/load-config.js';
import { brokerOptionsFrom } from '../../../src/cli/broker-options.js';
import { ErrorCode } from '../../../src/protocol/error-codes.js';
import { useTempDir } from '../../harness/temp-dir.js';

let dir: string;
const scratch = useTempDir('ms-config-');
beforeEach(async () => {
  dir = scratch.path;
});

async function file(text: string): Promise<string> {
  const path = join(dir, 'memorystreamer.toml');
  await writeFile(path, text);
  return path;
}

async function problems(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe(ErrorCode.INVALID_CONFIG);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies defaults, file, environment and flags in that order and records the source', async () => {
    const path = await file(`
[server]
port = 7500
host = "0.0.0.0"
idle_timeout = "2m"

[topics]
durability = "always"
retention = "7d"
max_message_bytes = "2MiB"
`);
    const loaded = await loadConfig({
      file: path,
      env: {
        MEMORYSTREAMER_SERVER_PORT: '7600',
        MEMORYSTREAMER_TOPICS_PARTITIONS: '3',
        MEMORYSTREAMER_BROKERS: 'ignored:1',
        PATH: '/bin',
      },
      flags: { 'server.port': '7700' },
    });
    expect(loaded.values['server.port']).toBe(7700);
    expect(loaded.sources['server.port']).toBe('flag');
    expect(loaded.values['topics.partitions']).toBe(3);
    expect(loaded.sources['topics.partitions']).toBe('env');
    expect(loaded.values['server.host']).toBe('0.0.0.0');
    expect(loaded.sources['server.host']).toBe('file');
    expect(loaded.values['server.idle_timeout']).toBe(120_000);
    expect(loaded.values['topics.retention']).toBe(7 * 86_400_000);
    expect(loaded.values['topics.max_message_bytes']).toBe(2 * 1024 * 1024);
    expect(loaded.sources['storage.data_dir']).toBe('default');
    const options = brokerOptionsFrom(loaded, (p) => `/abs/${p}`);
    expect(options).toMatchObject({
      port: 7700,
      host: '0.0.0.0',
      dataDir: '/abs/./data',
      defaultPartitions: 3,
    });
    expect(options.topicDefaults).toMatchObject({ durability: 'always', maxMessageBytes: 2 * 1024 * 1024 });
    expect(options.limits).toMatchObject({ idleTimeoutMs: 120_000 });
    expect(envName('server.max_connections')).toBe('MEMORYSTREAMER_SERVER_MAX_CONNECTIONS');
  });

  it('leaves the native-addon switches (MEMORYSTREAMER_NATIVE_*) and the CLI broker list alone', async () => {
    const loaded = await loadConfig({
      env: {
        MEMORYSTREAMER_NATIVE_CRC: '0',
        MEMORYSTREAMER_NATIVE_MEMORY: '0',
        MEMORYSTREAMER_BROKERS: 'h:1',
      },
    });
    expect(loaded.values['server.port']).toBe(7400);
  });

  it('accepts forever and unlimited', async () => {
    const loaded = await loadConfig({
      env: { MEMORYSTREAMER_TOPICS_RETENTION: 'forever', MEMORYSTREAMER_TOPICS_RETENTION_BYTES: 'unlimited' },
    });
    expect(loaded.values['topics.retention']).toBe(-1);
    expect(loaded.values['topics.retention_bytes']).toBe(-1);
  });

  it('reports every problem with its key, source, value and what is allowed', async () => {
    const path = await file(`
[server]
port = 99999
colour = "red"

[topics]
durability = "sometimes"
segment_bytes = "12 parsecs"
`);
    const found = await problems(
      loadConfig({
        file: path,
        env: { MEMORYSTREAMER_SERVER_PROT: '1', MEMORYSTREAMER_SERVER_IDLE_TIMEOUT: '1ms' },
      }),
    );
    expect(found).toHaveLength(6);
    expect(found.join('\n')).toContain('(server.port) 99999: expected an integer from 0 to 65535');
    expect(found.join('\n')).toContain('unknown setting "server.colour"');
    expect(found.join('\n')).toContain(
      '(topics.durability) "sometimes": expected one of always, interval, never',
    );
    expect(found.join('\n')).toContain('(topics.segment_bytes) "12 parsecs"');
    expect(found.join('\n')).toContain('environment: unknown variable MEMORYSTREAMER_SERVER_PROT');
    expect(found.join('\n')).toContain(
      'environment MEMORYSTREAMER_SERVER_IDLE_TIMEOUT (server.idle_timeout) "1ms"',
    );
  });

  it('takes TOML booleans for on/off settings', async () => {
    const path = await file('[admin]\nenabled = false\nmetrics = true\n');
    const loaded = await loadConfig({ file: path });
    expect(loaded.values['admin.enabled']).toBe('false');
    expect(loaded.values['admin.metrics']).toBe('true');
    expect((await problems(loadConfig({ file: await file('[admin]\nenabled = 1\n') })))[0]).toContain(
      '(admin.enabled) 1: expected one of true, false',
    );
  });

  it('takes an OTLP endpoint only as an http(s) URL', async () => {
    const found = await problems(loadConfig({ env: { MEMORYSTREAMER_TRACING_OTLP_ENDPOINT: 'ftp://x' } }));
    expect(found.join('\n')).toContain(
      '(tracing.otlp_endpoint) "ftp://x": expected an http:// or https:// URL, or "" for none',
    );
    const ok = await loadConfig({ env: { MEMORYSTREAMER_TRACING_OTLP_ENDPOINT: 'http://127.0.0.1:4318' } });
    expect(ok.values['tracing.otlp_endpoint']).toBe('http://127.0.0.1:4318');
    expect((await loadConfig({})).values['tracing.otlp_endpoint']).toBe('');
  });

  it('names the file, line and column of a TOML syntax error, with the line itself', async () => {
    const path = await file('[server]\nport = 7400\nhost = "127.0.0.1\n');
    const [problem] = await problems(loadConfig({ file: path }));
    expect(problem).toBe(
      `${path}:3:18: not valid TOML (line 3, column 18): control characters are not allowed in strings\n` +
        '2:  port = 7400\n3:  host = "127.0.0.1\n                     ^',
    );
    const [duplicate] = await problems(loadConfig({ file: await file('[server]\nport = 1\nport = 2\n') }));
    expect(duplicate).toMatch(
      /memorystreamer\.toml:3:1: not valid TOML \(line 3, column 1\): .*already defined/,
    );
  });

  it('refuses unreadable and malformed files', async () => {
    expect((await problems(loadConfig({ file: join(dir, 'missing.toml') })))[0]).toMatch(
      /cannot read configuration file/,
    );
    expect((await problems(loadConfig({ file: await file('[server\nport = ') })))[0]).toMatch(
      /memorystreamer\.toml:1:\d+: not valid TOML \(line 1, column \d+\)/,
    );
    expect((await problems(loadConfig({ file: await file('port = 1') })))[0]).toMatch(
      /must be a \[section\] table/,
    );
  });
});
