// Exit codes tell a wrong command line from a broker's refusal: a setting found wrong before any
// broker is asked (a broker address, a profile, TLS or token files, a file to produce) exits 2
// (usage) with its code and message, not 1 (the broker refused). So does a `serve` whose own
// settings are wrong (flags, environment, configuration file), before any broker starts.
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { EXIT } from '../../src/cli/output.js';

async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const code = await run(argv, { env: {}, out: () => undefined, err: (t) => err.push(t) });
  return { code, err: err.join('\n') };
}

describe('usage errors found before any broker is asked', () => {
  it.each([
    [['--broker', 'notahost', 'topic', 'list'], /INVALID_CONFIG/],
    [['--broker', '127.0.0.1:99999', 'topic', 'list'], /INVALID_CONFIG/],
    [['--broker', '', 'topic', 'list'], /no broker address/],
    [['--broker', '127.0.0.1:1', '--tls-ca', '/nonexistent/ca.pem', 'topic', 'list'], /ca\.pem/],
    [['--broker', '127.0.0.1:1', '--profile', 'nope', 'topic', 'list'], /nope|cli\.toml/],
    [['--broker', '127.0.0.1:1', 'produce', 'events', '-f', '/nonexistent/input.txt'], /--file .*input\.txt/],
  ])('%j exits 2 with a message', async (argv, message) => {
    const { code, err } = await cli(...argv);
    expect(code).toBe(EXIT.usage);
    expect(err).toMatch(message);
  });

  it.each([
    [['serve', '--port', 'abc'], /INVALID_CONFIG \(304\).*server\.port/],
    [['serve', '--config', '/nonexistent/broker.toml'], /INVALID_CONFIG \(304\).*broker\.toml/],
    [['serve', '--cores', '0'], /--cores "0"/],
    [['serve', '--cores', '2', '--broker-id', '3'], /CORES_OPTION_CONFLICT.*--broker-id/],
  ])('serve %j: a wrong setting exits 2 before any broker starts', async (argv, message) => {
    const { code, err } = await cli(...argv);
    expect(err).toMatch(message);
    expect(code).toBe(EXIT.usage);
  });

  it('a broker that cannot be reached is still exit 3', async () => {
    expect((await cli('--broker', '127.0.0.1:1', 'topic', 'list')).code).toBe(EXIT.unavailable);
  });
});
