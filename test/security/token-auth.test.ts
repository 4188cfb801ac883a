// Bearer tokens on a real broker (embedded, port 0, a temporary data directory): a client with a
// valid token is served as User:<sub>; bad tokens (wrong key, issuer, audience, expired, not yet
// valid, alg none, malformed) are answered AUTHENTICATION_FAILED and close the connection, and
// count against the address like SCRAM failures; token and SCRAM work side by side; a connection
// is closed with TOKEN_EXPIRED when its token expires, and a client whose token is a function
// gets a fresh one on the reconnection; random token payloads get errors only; a broker with the
// token mechanism and no key or audience does not start; the CLI finds a token in a file, the
// environment or a profile.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { loadConfig } from '../../src/broker/config/load-config.js';
import { authFrom } from '../../src/cli/broker-options.js';
import { resolveSasl } from '../../src/cli/profiles.js';
import { connect } from '../../src/client/connect.js';
import type { TokenSaslOptions } from '../../src/client/sasl.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import type { BrokerLogger } from '../../src/metrics/logger.js';
import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import { authenticateStartCommand } from '../../src/protocol/commands/auth-commands.js';
import { decodeErrorPayload } from '../../src/protocol/commands/control.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import type { Frame } from '../../src/protocol/frame-decoder.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import type { BrokerAuthOptions } from '../../src/security/broker-authenticator.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { UserStore } from '../../src/security/user-store.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'memorystreamer';

interface LogLine {
  message: string;
  fields: Record<string, unknown>;
}

const keys = generateKeyPairSync('ed25519');

/** A token signed with `key` (the broker's by default), valid for a minute unless claims say else. */
async function token(
  claims: Record<string, unknown> = {},
  key: KeyObject = keys.privateKey,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    sub: 'svc',
    iss: ISSUER,
    aud: AUDIENCE,
    exp: now + 60,
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA' }).sign(key);
}

async function startTokenBroker(auth: Partial<BrokerAuthOptions> = {}) {
  const dir = await tempDir('ms-token-auth-');
  const keyFile = join(dir, 'token-key.pem');
  await writeFile(keyFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  const log: LogLine[] = [];
  const logger: BrokerLogger = {
    info: (fields, message) => log.push({ message, fields }),
    warn: (fields, message) => log.push({ message, fields }),
    error: (fields, message) => log.push({ message, fields }),
    debug() {},
  };
  const broker = await startEmbeddedBroker({
    dataDir: dir,
    port: 0,
    logger,
    stopDeadlineMs: 200,
    auth: {
      mechanisms: ['token'],
      failureDelayMs: 10,
      token: { publicKeyFile: keyFile, issuer: ISSUER, audience: AUDIENCE },
      ...auth,
    },
  });
  return { broker, port: broker.address!.port, log, dataDir: dir };
}

async function rawTokenStart(
  port: number,
  jwt: string | Buffer,
  mechanism = 'token',
): Promise<{ raw: RawClient; answer: Frame }> {
  const raw = await RawClient.open(port);
  await raw.handshake();
  const writer = new BinaryWriter(256);
  authenticateStartCommand.encodeRequest(writer, {
    mechanism,
    message: typeof jwt === 'string' ? Buffer.from(jwt) : jwt,
  });
  raw.send(Opcode.AUTHENTICATE_START, writer.finish(), 1);
  return { raw, answer: await raw.waitFor((f) => f.header.correlationId === 1) };
}

function errorOfFrame(frame: Frame): { code: number; message: string } {
  expect(frame.header.flags & FrameFlags.ERROR).toBeTruthy();
  return { code: frame.header.errorCode, message: decodeErrorPayload(frame.payload) };
}

describe('a broker with bearer tokens', () => {
  it('serves a client with a valid token as User:<sub>, in one round trip', async () => {
    const { port, log } = await startTokenBroker();
    const { raw, answer } = await rawTokenStart(port, await token());
    expect(answer.header.flags & FrameFlags.ERROR).toBe(0);
    expect(authenticateStartCommand.decodeResponse(new BinaryReader(answer.payload)).message.toString()).toBe(
      'User:svc',
    );
    // The connection is served now.
    const writer = new BinaryWriter(16);
    COMMANDS.listTopics.encodeRequest(writer, {});
    raw.send(Opcode.LIST_TOPICS, writer.finish(), 2);
    const listed = await raw.waitFor((f) => f.header.correlationId === 2);
    expect(listed.header.flags & FrameFlags.ERROR).toBe(0);
    raw.socket.destroy();

    const client = await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'token', token: await token() },
    });
    await client.admin.createTopic({ name: 'orders', partitions: 1 });
    await client.close();
    const logged = log.filter((l) => l.message === 'authenticated');
    expect(logged.map((l) => [l.fields.principal, l.fields.mechanism])).toEqual([
      ['User:svc', 'token'],
      ['User:svc', 'token'],
    ]);
  });

  it('refuses bad tokens with AUTHENTICATION_FAILED (800), says only expired or invalid, logs why and closes', async () => {
    const { port, log } = await startTokenBroker({ failureDelayMs: 0, maxFailuresPerMinute: 1000 });
    const now = Math.floor(Date.now() / 1000);
    const other = generateKeyPairSync('ed25519');
    const cases: Array<[string, string | Buffer, string]> = [
      ['wrong key', await token({}, other.privateKey), 'bearer token invalid'],
      ['wrong issuer', await token({ iss: 'https://elsewhere.test' }), 'bearer token invalid'],
      ['wrong audience', await token({ aud: 'another-service' }), 'bearer token invalid'],
      ['expired', await token({ exp: now - 30 }), 'bearer token expired'],
      ['not yet valid', await token({ nbf: now + 600 }), 'bearer token not yet valid'],
      [
        'alg none',
        new UnsecuredJWT({ sub: 'svc', iss: ISSUER, aud: AUDIENCE, exp: now + 60 }).encode(),
        'bearer token invalid',
      ],
      ['malformed', 'eyJhbGciOi.not-base64.!!', 'bearer token invalid'],
      ['not UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0x80]), 'bearer token invalid'],
    ];
    for (const [what, jwt, message] of cases) {
      const { raw, answer } = await rawTokenStart(port, jwt);
      const refused = errorOfFrame(answer);
      expect({ what, code: refused.code }).toEqual({ what, code: ErrorCode.AUTHENTICATION_FAILED });
      expect(refused.message).toBe(`authentication failed: ${message}`);
      await raw.waitClosed();
    }
    const reasons = log
      .filter((l) => l.message === 'authentication failed')
      .map((l) => String(l.fields.reason));
    expect(reasons).toHaveLength(cases.length);
    // The log says more than the client is told.
    expect(reasons[1]).toMatch(/iss/);
    expect(reasons[2]).toMatch(/aud/);

    const error = (await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'token', token: await token({ aud: 'another-service' }) },
    }).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect(error.codeName).toBe('AUTHENTICATION_FAILED');
  });

  it('counts token failures per address like SCRAM failures (TOO_MANY_AUTHENTICATION_FAILURES)', async () => {
    const { port, log } = await startTokenBroker({ maxFailuresPerMinute: 2 });
    const bad = await token({ aud: 'another-service' });
    const codes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { answer } = await rawTokenStart(port, bad);
      codes.push(errorOfFrame(answer).code);
    }
    expect(codes).toEqual([
      ErrorCode.AUTHENTICATION_FAILED,
      ErrorCode.AUTHENTICATION_FAILED,
      ErrorCode.TOO_MANY_AUTHENTICATION_FAILURES,
    ]);
    // Even a good token waits for the window to pass.
    const { answer } = await rawTokenStart(port, await token());
    expect(errorOfFrame(answer).code).toBe(ErrorCode.TOO_MANY_AUTHENTICATION_FAILURES);
    expect(log.filter((l) => l.message === 'authentication failed').map((l) => l.fields.delayMs)).toEqual([
      10, 20, 0, 0,
    ]);
  });

  it('serves token and SCRAM clients side by side', async () => {
    const dir = await tempDir('ms-token-scram-');
    const store = await UserStore.open(dir);
    await store.change({
      kind: 'add',
      name: 'alice',
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', 'alice-secret') },
    });
    const keyFile = join(dir, 'token-key.pem');
    await writeFile(keyFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    const broker = await startEmbeddedBroker({
      dataDir: dir,
      port: 0,
      stopDeadlineMs: 200,
      auth: {
        mechanisms: ['SCRAM-SHA-256', 'token'],
        token: { publicKeyFile: keyFile, issuer: ISSUER, audience: AUDIENCE },
      },
    });
    const brokers = `127.0.0.1:${broker.address!.port}`;
    const byPassword = await connect({
      brokers,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    const byToken = await connect({
      brokers,
      sasl: { mechanism: 'token', token: await token({ sub: 'svc' }) },
    });
    await byPassword.admin.createTopic({ name: 'shared', partitions: 1 });
    expect((await byToken.admin.listTopics()).map((t) => t.name)).toContain('shared');
    await byPassword.close();
    await byToken.close();
    // A mechanism the broker does not accept is named with the ones it does.
    const { answer } = await rawTokenStart(broker.address!.port, 'x', 'SCRAM-SHA-512');
    const refused = errorOfFrame(answer);
    expect(refused.code).toBe(ErrorCode.UNSUPPORTED_SASL_MECHANISM);
    expect(refused.message).toContain('SCRAM-SHA-256, token');
  });

  it('closes a connection with TOKEN_EXPIRED when its token expires; a token function gives the reconnection a fresh one', async () => {
    const { port, log } = await startTokenBroker();
    // exp has whole seconds: this one expires 1 to 2 s from now.
    const shortLived = () => token({ exp: Math.floor(Date.now() / 1000) + 2 });
    const { raw, answer } = await rawTokenStart(port, await shortLived());
    expect(answer.header.flags & FrameFlags.ERROR).toBe(0);
    const closing = await raw.waitFor((f) => f.header.correlationId === 0, 10_000);
    expect(errorOfFrame(closing).code).toBe(ErrorCode.TOKEN_EXPIRED);
    await raw.waitClosed();

    let calls = 0;
    const sasl: TokenSaslOptions = {
      mechanism: 'token',
      token: async () => {
        calls++;
        return shortLived();
      },
    };
    const client = await connect({ brokers: `127.0.0.1:${port}`, sasl });
    try {
      await client.admin.createTopic({ name: 'renewed', partitions: 1 });
      expect(calls).toBe(1);
      // The broker closes the connection at expiry; the next request reconnects with a new token.
      await until(() => log.filter((l) => l.message === 'authenticated').length >= 1 && calls >= 1);
      await until(
        async () => {
          try {
            await client.admin.listTopics();
            return calls >= 2;
          } catch {
            return false;
          }
        },
        { timeoutMs: 15_000 },
      );
      expect(calls).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
    }
  });

  it('follows a rotation of its JWKS file without a restart', async () => {
    const dir = await tempDir('ms-token-jwks-');
    const jwksFile = join(dir, 'jwks.json');
    const old = generateKeyPairSync('ed25519');
    const next = generateKeyPairSync('ed25519');
    const publish = async (...keys: Array<[KeyObject, string]>) =>
      writeFile(
        jwksFile,
        JSON.stringify({
          keys: await Promise.all(keys.map(async ([k, kid]) => ({ ...(await exportJWK(k)), kid }))),
        }),
      );
    await publish([old.publicKey, 'old']);
    const { port } = await startTokenBroker({
      token: { jwksFile, issuer: ISSUER, audience: AUDIENCE },
    });
    const signed = (key: KeyObject, kid: string) =>
      new SignJWT({ sub: kid, iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })
        .setProtectedHeader({ alg: 'EdDSA', kid })
        .sign(key);
    const principalOf = async (jwt: string) => {
      const { raw, answer } = await rawTokenStart(port, jwt);
      raw.socket.destroy();
      return answer.header.flags & FrameFlags.ERROR
        ? errorOfFrame(answer).code
        : authenticateStartCommand.decodeResponse(new BinaryReader(answer.payload)).message.toString();
    };
    expect(await principalOf(await signed(old.privateKey, 'old'))).toBe('User:old');
    expect(await principalOf(await signed(next.privateKey, 'next'))).toBe(ErrorCode.AUTHENTICATION_FAILED);
    await publish([next.publicKey, 'next']);
    expect(await principalOf(await signed(next.privateKey, 'next'))).toBe('User:next');
    expect(await principalOf(await signed(old.privateKey, 'old'))).toBe(ErrorCode.AUTHENTICATION_FAILED);
  });

  it('answers random token payloads with errors only, and still serves a good client', async () => {
    const { port } = await startTokenBroker({ failureDelayMs: 0, maxFailuresPerMinute: 1_000_000 });
    const valid = Buffer.from(await token());
    let seed = 4242;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let round = 0; round < 30; round++) {
      const bytes = round % 2 === 0 ? Buffer.from(valid) : Buffer.alloc(next() % 200);
      for (let i = 0; i < bytes.length; i++)
        if (round % 2 === 1 || next() % 16 === 0) bytes[i] = next() & 0xff;
      const { raw, answer } = await rawTokenStart(port, bytes).catch(() => ({ raw: null, answer: null }));
      if (answer !== null && answer.header.flags & FrameFlags.ERROR)
        expect(answer.header.errorCode).toBe(ErrorCode.AUTHENTICATION_FAILED);
      else if (answer !== null) expect(bytes.equals(valid)).toBe(true);
      raw?.socket.destroy();
    }
    const client = await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'token', token: await token() },
    });
    await client.admin.listTopics();
    await client.close();
  });

  it('does not start with the token mechanism and no way to verify tokens (fail closed)', async () => {
    const dir = await tempDir('ms-token-closed-');
    const missing = (await BrokerNode.start({ dataDir: dir, port: 0, auth: { mechanisms: ['token'] } }).catch(
      (e: unknown) => e,
    )) as MemoryStreamerError;
    expect(missing.codeName).toBe('INVALID_CONFIG');
    expect(missing.message).toMatch(/auth.token_issuer, auth.token_audience/);
    const noAudience = (await BrokerNode.start({
      dataDir: dir,
      port: 0,
      auth: {
        mechanisms: ['token'],
        token: { publicKeyFile: join(dir, 'k.pem'), issuer: ISSUER, audience: '' },
      },
    }).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(noAudience.codeName).toBe('INVALID_CONFIG');
  });
});

describe('token settings from a configuration file', () => {
  it('reads the [auth] token_* keys, key paths relative to the file', async () => {
    const dir = await tempDir('ms-token-config-');
    const path = join(dir, 'broker.toml');
    await writeFile(
      path,
      [
        '[auth]',
        'mechanisms = ["token"]',
        'token_jwks_file = "keys/jwks.json"',
        `token_issuer = "${ISSUER}"`,
        `token_audience = "${AUDIENCE}"`,
        'token_principal_claim = "client_id"',
        'token_algorithms = ["EdDSA", "ES256"]',
        'token_clock_tolerance = "30s"',
      ].join('\n'),
    );
    const config = await loadConfig({ file: path, env: {} });
    expect(authFrom(config, (p) => join(dir, p))).toMatchObject({
      mechanisms: ['token'],
      token: {
        jwksFile: join(dir, 'keys/jwks.json'),
        issuer: ISSUER,
        audience: AUDIENCE,
        principalClaim: 'client_id',
        algorithms: ['EdDSA', 'ES256'],
        clockToleranceMs: 30_000,
      },
    });
  });
});

describe('the CLI with a bearer token', () => {
  it('reads --token-file on every connection, else MEMORYSTREAMER_TOKEN, else the profile token_file', async () => {
    const dir = await tempDir('ms-token-cli-');
    const file = join(dir, 'svc.jwt');
    await writeFile(file, 'first-token\n');
    const byFlag = (await resolveSasl({ tokenFile: file, env: {} })) as TokenSaslOptions;
    expect(byFlag.mechanism).toBe('token');
    const read = byFlag.token as () => Promise<string>;
    expect(await read()).toBe('first-token');
    await writeFile(file, 'renewed-token');
    expect(await read()).toBe('renewed-token');

    expect(await resolveSasl({ env: { MEMORYSTREAMER_TOKEN: 'env-token' } })).toEqual({
      mechanism: 'token',
      token: 'env-token',
    });

    const profiles = join(dir, 'cli.toml');
    await writeFile(profiles, '[profiles.svc]\nbrokers = "127.0.0.1:7400"\ntoken_file = "svc.jwt"\n');
    const byProfile = (await resolveSasl({
      profile: 'svc',
      env: { MEMORYSTREAMER_CLI_CONFIG: profiles },
    })) as TokenSaslOptions;
    expect(await (byProfile.token as () => Promise<string>)()).toBe('renewed-token');

    await expect(resolveSasl({ tokenFile: file, user: 'alice', env: {} })).rejects.toThrow(/give one/);
    await expect(resolveSasl({ tokenFile: join(dir, 'missing.jwt'), env: {} })).rejects.toThrow(
      /cannot read the token file/,
    );
  });
});
