// Authentication on a real broker (embedded, port 0, a temporary data directory): nothing but the
// handshake and the authentication is answered before a connection authenticated; a wrong password
// and an unknown user get the same answer after the rate limit's delay and close the connection;
// a replayed client-final message is refused; failures from one address are capped per minute;
// clients authenticate on every connection; user management over the wire is for super-users;
// a broker with authentication on and no user does not start; an open broker stays open.

import { describe, expect, it } from 'vitest';
import { BrokerNode } from '../../src/broker/broker-node.js';
import { connect } from '../../src/client/connect.js';
import { TcpTransport } from '../../src/client/tcp-transport.js';
import { MemoryStreamerError } from '../../src/common/errors.js';
import type { BrokerLogger } from '../../src/metrics/logger.js';
import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import {
  authenticateFinishCommand,
  authenticateStartCommand,
  UserAction,
  userAlterCommand,
  userListCommand,
} from '../../src/protocol/commands/auth-commands.js';
import { decodeErrorPayload } from '../../src/protocol/commands/control.js';
import { COMMANDS } from '../../src/protocol/commands/registry.js';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import type { Frame } from '../../src/protocol/frame-decoder.js';
import { FrameFlags } from '../../src/protocol/frame-header.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import type { BrokerAuthOptions } from '../../src/security/broker-authenticator.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { ScramClient, WRONG_CREDENTIALS } from '../../src/security/scram.js';
import { UserStore } from '../../src/security/user-store.js';
import { makeCertificates, opensslAvailable } from '../broker/server/helpers/certs.js';
import { RawClient } from '../broker/server/helpers/raw-client.js';
import { startEmbeddedBroker } from '../harness/embedded.js';
import { tempDir, useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

async function addUser(dataDir: string, name: string, password: string): Promise<void> {
  const store = await UserStore.open(dataDir);
  await store.change({
    kind: 'add',
    name,
    credentials: {
      'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', password),
      'SCRAM-SHA-512': deriveCredential('SCRAM-SHA-512', password),
    },
  });
}

async function startAuthBroker(auth: Partial<BrokerAuthOptions> = {}, dataDir?: string) {
  const dir = dataDir ?? (await tempDir('ms-auth-'));
  await addUser(dir, 'alice', 'alice-secret');
  await addUser(dir, 'admin', 'admin-secret');
  const log: LogLine[] = [];
  const logger: BrokerLogger = {
    info: (fields, message) => log.push({ level: 'info', message, fields }),
    warn: (fields, message) => log.push({ level: 'warn', message, fields }),
    error: (fields, message) => log.push({ level: 'error', message, fields }),
    debug() {},
  };
  const broker = await startEmbeddedBroker({
    dataDir: dir,
    port: 0,
    logger,
    stopDeadlineMs: 200,
    auth: {
      mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-512'],
      superUsers: ['User:admin'],
      failureDelayMs: 10,
      ...auth,
    },
  });
  return { broker, port: broker.address!.port, log, dataDir: dir };
}

function payloadOf<T>(codec: { decodeResponse(reader: BinaryReader): T }, frame: Frame): T {
  return codec.decodeResponse(new BinaryReader(frame.payload));
}

function errorOfFrame(frame: Frame): { code: number; message: string } {
  expect(frame.header.flags & FrameFlags.ERROR).toBeTruthy();
  return { code: frame.header.errorCode, message: decodeErrorPayload(frame.payload) };
}

/** Sends one authentication request on a raw connection and waits for its answer. */
async function rawRequest<Q>(
  raw: RawClient,
  codec: { opcode: number; encodeRequest(writer: BinaryWriter, request: Q): void },
  request: Q,
  correlationId: number,
): Promise<Frame> {
  const writer = new BinaryWriter(128);
  codec.encodeRequest(writer, request);
  raw.send(codec.opcode, writer.finish(), correlationId);
  return raw.waitFor((f) => f.header.correlationId === correlationId);
}

async function rawOpen(port: number): Promise<RawClient> {
  const raw = await RawClient.open(port);
  await raw.handshake();
  return raw;
}

describe('a broker with authentication on', () => {
  it('refuses every request before authentication with AUTHENTICATION_FAILED naming the mechanisms', async () => {
    const { port } = await startAuthBroker();
    const raw = await rawOpen(port);
    const writer = new BinaryWriter(64);
    COMMANDS.listTopics.encodeRequest(writer, {});
    raw.send(Opcode.LIST_TOPICS, writer.finish(), 5);
    raw.send(Opcode.PING, Buffer.alloc(0), 6);
    for (const id of [5, 6]) {
      const refused = errorOfFrame(await raw.waitFor((f) => f.header.correlationId === id));
      expect(refused.code).toBe(ErrorCode.AUTHENTICATION_FAILED);
      expect(refused.message).toMatch(/requires authentication \(SCRAM-SHA-256, SCRAM-SHA-512\)/);
    }
    raw.socket.destroy();
  });

  it('serves a client that authenticates (both mechanisms), and knows its principal', async () => {
    const { port, log } = await startAuthBroker();
    for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
      const client = await connect({
        brokers: `127.0.0.1:${port}`,
        sasl: { mechanism, username: 'alice', password: 'alice-secret' },
      });
      try {
        await client.admin.createTopic({ name: `t-${mechanism}`, partitions: 1 });
        const producer = client.producer();
        await producer.send({ topic: `t-${mechanism}`, value: Buffer.from('hello') });
        await producer.close();
      } finally {
        await client.close();
      }
    }
    const authenticated = log.filter((l) => l.message === 'authenticated');
    expect(authenticated.map((l) => [l.fields.principal, l.fields.mechanism])).toEqual([
      ['User:alice', 'SCRAM-SHA-256'],
      ['User:alice', 'SCRAM-SHA-512'],
    ]);
  });

  it('answers a wrong password and an unknown user alike, after the delay, logs both and closes', async () => {
    const { port, log } = await startAuthBroker();
    const failures: MemoryStreamerError[] = [];
    for (const username of ['alice', 'nobody']) {
      const error = await connect({
        brokers: `127.0.0.1:${port}`,
        sasl: { mechanism: 'SCRAM-SHA-256', username, password: 'wrong' },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MemoryStreamerError);
      failures.push(error as MemoryStreamerError);
    }
    expect(failures.map((f) => f.codeName)).toEqual(['AUTHENTICATION_FAILED', 'AUTHENTICATION_FAILED']);
    expect(failures[0]!.message).toBe(failures[1]!.message);
    expect(failures[0]!.message).toContain(WRONG_CREDENTIALS);
    const logged = log.filter((l) => l.message === 'authentication failed');
    expect(logged.map((l) => l.fields.user)).toEqual(['alice', 'nobody']);
    expect(String(logged[0]!.fields.reason)).toContain('proof differs');
    expect(String(logged[1]!.fields.reason)).toContain('no such user');
    // The delay doubles with the failures of the last minute from this address.
    expect(logged.map((l) => l.fields.delayMs)).toEqual([10, 20]);
  });

  it('refuses a client-final message replayed on a new connection', async () => {
    const { port } = await startAuthBroker();
    const scram = new ScramClient({
      mechanism: 'SCRAM-SHA-256',
      username: 'alice',
      password: 'alice-secret',
    });
    const first = scram.first();
    const raw = await rawOpen(port);
    const started = await rawRequest(
      raw,
      authenticateStartCommand,
      { mechanism: 'SCRAM-SHA-256', message: Buffer.from(first) },
      1,
    );
    const clientFinal = scram.final(payloadOf(authenticateStartCommand, started).message.toString());
    const finished = await rawRequest(
      raw,
      authenticateFinishCommand,
      { message: Buffer.from(clientFinal) },
      2,
    );
    expect(payloadOf(authenticateFinishCommand, finished).principal).toBe('User:alice');
    raw.socket.destroy();
    // An eavesdropper replays both messages: the broker's new nonce makes the old proof worthless.
    const replay = await rawOpen(port);
    await rawRequest(
      replay,
      authenticateStartCommand,
      { mechanism: 'SCRAM-SHA-256', message: Buffer.from(first) },
      1,
    );
    const refused = errorOfFrame(
      await rawRequest(replay, authenticateFinishCommand, { message: Buffer.from(clientFinal) }, 2),
    );
    expect(refused.code).toBe(ErrorCode.AUTHENTICATION_FAILED);
    await replay.waitClosed();
  });

  it('caps the failures of one address per minute (TOO_MANY_AUTHENTICATION_FAILURES)', async () => {
    const { port, log } = await startAuthBroker({ maxFailuresPerMinute: 3 });
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const error = (await connect({
        brokers: `127.0.0.1:${port}`,
        sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: `guess-${i}` },
      }).catch((e: unknown) => e)) as MemoryStreamerError;
      codes.push(error.codeName);
    }
    expect(codes).toEqual([
      'AUTHENTICATION_FAILED',
      'AUTHENTICATION_FAILED',
      'AUTHENTICATION_FAILED',
      'TOO_MANY_AUTHENTICATION_FAILURES',
    ]);
    // Even the right password waits for the window to pass.
    const blocked = (await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    }).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(blocked.codeName).toBe('TOO_MANY_AUTHENTICATION_FAILURES');
    expect(blocked.retriable).toBe(true);
    expect(log.filter((l) => l.message === 'authentication failed').map((l) => l.fields.delayMs)).toEqual([
      10, 20, 40, 0, 0,
    ]);
  });

  it('a client authenticates again on every reconnection', async () => {
    const dir = await tempDir('ms-auth-reconnect-');
    const first = await startAuthBroker({}, dir);
    const client = await connect({
      brokers: `127.0.0.1:${first.port}`,
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 'alice-secret' },
    });
    try {
      await client.admin.createTopic({ name: 'before', partitions: 1 });
      await first.broker.stop();
      // The same port, the same data directory (its users.json already holds alice and admin).
      const log: LogLine[] = [];
      const logger: BrokerLogger = {
        info: (fields, message) => log.push({ level: 'info', message, fields }),
        warn() {},
        error() {},
        debug() {},
      };
      await startEmbeddedBroker({
        dataDir: dir,
        port: first.port,
        logger,
        stopDeadlineMs: 200,
        auth: { mechanisms: ['SCRAM-SHA-512'] },
      });
      await until(async () => {
        try {
          return (await client.admin.listTopics()).some((t) => t.name === 'before');
        } catch {
          return false;
        }
      });
      expect(log.some((l) => l.message === 'authenticated' && l.fields.principal === 'User:alice')).toBe(
        true,
      );
    } finally {
      await client.close();
    }
  });

  it('lets super-users list and change users over the wire, and nobody else', async () => {
    const { port, dataDir } = await startAuthBroker({ scramIterations: 4096 });
    const transport = (username: string, password: string) =>
      new TcpTransport({
        brokers: [{ host: '127.0.0.1', port }],
        sasl: { mechanism: 'SCRAM-SHA-256', username, password },
      });
    const admin = transport('admin', 'admin-secret');
    const alice = transport('alice', 'alice-secret');
    try {
      const listed = await admin.call(userListCommand, {}, { timeoutMs: 5000 });
      expect(listed.users.map((u) => u.name)).toEqual(['admin', 'alice']);
      expect(listed.iterations).toBe(4096);
      const refused = (await alice
        .call(userListCommand, {}, { timeoutMs: 5000 })
        .catch((e: unknown) => e)) as MemoryStreamerError;
      expect(refused.codeName).toBe('AUTHORIZATION_FAILED');
      expect(refused.message).toContain('User:alice is not one');
      const bob = deriveCredential('SCRAM-SHA-256', 'bob-secret');
      await admin.call(
        userAlterCommand,
        { action: UserAction.ADD, name: 'bob', credentials: [{ mechanism: 'SCRAM-SHA-256', ...bob }] },
        { timeoutMs: 5000 },
      );
      // Bob can connect at once, and the users file holds him.
      const client = await connect({
        brokers: `127.0.0.1:${port}`,
        sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 'bob-secret' },
      });
      await client.close();
      expect((await UserStore.open(dataDir)).has('bob')).toBe(true);
      const tooFew = (await admin
        .call(
          userAlterCommand,
          {
            action: UserAction.PASSWD,
            name: 'bob',
            credentials: [{ mechanism: 'SCRAM-SHA-256', ...bob, iterations: 100 }],
          },
          { timeoutMs: 5000 },
        )
        .catch((e: unknown) => e)) as MemoryStreamerError;
      expect(tooFew.codeName).toBe('INVALID_CREDENTIAL');
      await admin.call(
        userAlterCommand,
        { action: UserAction.REMOVE, name: 'bob', credentials: [] },
        { timeoutMs: 5000 },
      );
      const gone = (await admin
        .call(
          userAlterCommand,
          { action: UserAction.REMOVE, name: 'bob', credentials: [] },
          { timeoutMs: 5000 },
        )
        .catch((e: unknown) => e)) as MemoryStreamerError;
      expect(gone.codeName).toBe('USER_NOT_FOUND');
    } finally {
      await admin.close();
      await alice.close();
    }
  });

  it('picks up users added to the file while it runs (offline tool), without a restart', async () => {
    const { port, dataDir } = await startAuthBroker();
    await addUser(dataDir, 'carol', 'carol-secret');
    const client = await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'carol', password: 'carol-secret' },
    });
    await client.close();
  });

  it('answers random authentication payloads with errors only, and still serves a good client', async () => {
    const { port } = await startAuthBroker({ failureDelayMs: 0, maxFailuresPerMinute: 1_000_000 });
    const opcodes = [
      Opcode.AUTHENTICATE_START,
      Opcode.AUTHENTICATE_FINISH,
      Opcode.USER_LIST,
      Opcode.USER_ALTER,
    ];
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let round = 0; round < 40; round++) {
      const raw = await rawOpen(port);
      const valid = new BinaryWriter(64);
      authenticateStartCommand.encodeRequest(valid, {
        mechanism: 'SCRAM-SHA-256',
        message: Buffer.from('n,,n=alice,r=abc'),
      });
      const bytes = round % 2 === 0 ? Buffer.from(valid.finish()) : Buffer.alloc(next() % 64);
      for (let i = 0; i < bytes.length; i++)
        if (round % 2 === 1 || next() % 8 === 0) bytes[i] = next() & 0xff;
      raw.send(opcodes[next() % opcodes.length]!, bytes, 7);
      const answer = await raw
        .waitFor((f) => f.header.correlationId === 7 || f.header.correlationId === 0)
        .catch(() => null);
      // An answer (error or the server-first message), or a clean close: never silence on an open socket.
      if (answer === null) expect(raw.closed).toBe(true);
      else if (answer.header.flags & FrameFlags.ERROR) expect(answer.header.errorCode).toBeGreaterThan(0);
      raw.socket.destroy();
    }
    const client = await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    await client.admin.listTopics();
    await client.close();
  });

  it('does not start with authentication on and no user (fail closed)', async () => {
    const dir = await tempDir('ms-auth-empty-');
    const error = (await BrokerNode.start({
      dataDir: dir,
      port: 0,
      auth: { mechanisms: ['SCRAM-SHA-256'] },
    }).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(error.codeName).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(
      /holds no user, so no client could connect; add one first: memorystreamer user add/,
    );
  });
});

describe('a broker with authentication off', () => {
  it('serves clients without authentication and refuses authentication and user management clearly', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const port = broker.address!.port;
    const client = await connect({ brokers: `127.0.0.1:${port}` });
    await client.admin.createTopic({ name: 'open', partitions: 1 });
    await client.close();
    const raw = await rawOpen(port);
    const started = errorOfFrame(
      await rawRequest(
        raw,
        authenticateStartCommand,
        { mechanism: 'SCRAM-SHA-256', message: Buffer.from('n,,n=a,r=b') },
        1,
      ),
    );
    expect(started.code).toBe(ErrorCode.UNSUPPORTED_SASL_MECHANISM);
    expect(started.message).toContain('authentication is off');
    const listed = errorOfFrame(await rawRequest(raw, userListCommand, {}, 2));
    expect(listed.code).toBe(ErrorCode.AUTHORIZATION_FAILED);
    raw.socket.destroy();
    // A client that wants to authenticate is told, not silently served unauthenticated.
    const error = (await connect({
      brokers: `127.0.0.1:${port}`,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'a', password: 'b' },
    }).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(error.codeName).toBe('UNSUPPORTED_SASL_MECHANISM');
  });
});

describe.skipIf(!opensslAvailable())('mtls: a verified client certificate authenticates', () => {
  const certsDir = useTempDir('ms-auth-certs-', 'all');

  it('as User:<common name>; without a certificate a client must use SCRAM', async () => {
    const certs = await makeCertificates(certsDir.path);
    const dir = await tempDir('ms-auth-mtls-');
    await addUser(dir, 'alice', 'alice-secret');
    const log: LogLine[] = [];
    const logger: BrokerLogger = {
      info: (fields, message) => log.push({ level: 'info', message, fields }),
      warn() {},
      error() {},
      debug() {},
    };
    const broker = await startEmbeddedBroker({
      dataDir: dir,
      port: 0,
      logger,
      stopDeadlineMs: 200,
      tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientAuth: 'request' },
      auth: { mechanisms: ['mtls', 'SCRAM-SHA-256'] },
    });
    const brokers = `127.0.0.1:${broker.address!.port}`;
    const withCertificate = await connect({
      brokers,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
    });
    await withCertificate.admin.listTopics();
    await withCertificate.close();
    expect(
      log.filter((l) => l.message === 'authenticated').map((l) => [l.fields.principal, l.fields.mechanism]),
    ).toEqual([['User:client', 'mtls']]);
    // No certificate: refused until SCRAM.
    const plain = await connect({ brokers, tls: { ca: certs.ca } }).catch((e: unknown) => e);
    expect((plain as MemoryStreamerError).message).toMatch(/requires authentication \(mtls, SCRAM-SHA-256\)/);
    const scram = await connect({
      brokers,
      tls: { ca: certs.ca },
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    await scram.admin.listTopics();
    await scram.close();
    // A certificate and SCRAM credentials: the SCRAM user is the principal.
    const both = await connect({
      brokers,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'alice-secret' },
    });
    await both.close();
    expect(log.filter((l) => l.message === 'authenticated').map((l) => l.fields.principal)).toEqual([
      'User:client',
      'User:alice',
      'User:client',
      'User:alice',
    ]);
  });

  it('refuses to start with mtls and no client certificates', async () => {
    const certs = await makeCertificates(certsDir.path);
    const dir = await tempDir('ms-auth-mtls-');
    for (const tls of [undefined, { cert: certs.serverCert, key: certs.serverKey }]) {
      const error = (await BrokerNode.start({
        dataDir: dir,
        port: 0,
        ...(tls !== undefined ? { tls } : {}),
        auth: { mechanisms: ['mtls'] },
      }).catch((e: unknown) => e)) as MemoryStreamerError;
      expect(error.codeName).toBe('INVALID_CONFIG');
      expect(error.message).toMatch(/"mtls" needs TLS with client certificates/);
    }
  });
});
