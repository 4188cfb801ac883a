// The cap on authentication failures per address and minute holds for sessions started together:
// 100 SCRAM sessions started from one address before any of them sent its proof get at most the
// cap's number of proofs checked; the rest are refused with TOO_MANY_AUTHENTICATION_FAILURES, a
// right password among them too. (Checked only at the start, every one of them had its guess.)
import { describe, expect, it } from 'vitest';
import { BinaryReader } from '../../src/protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../src/protocol/codec/binary-writer.js';
import {
  authenticateFinishCommand,
  authenticateStartCommand,
} from '../../src/protocol/commands/auth-commands.js';
import { Opcode } from '../../src/protocol/opcodes.js';
import { BrokerAuthenticator, ConnectionAuth } from '../../src/security/broker-authenticator.js';
import { deriveCredential } from '../../src/security/credentials.js';
import { ScramClient } from '../../src/security/scram.js';
import { UserStore } from '../../src/security/user-store.js';
import { tempDir } from '../harness/temp-dir.js';

describe('the failure cap per address', () => {
  it('counts sessions that were started before any of them failed', async () => {
    const dataDir = await tempDir('ms-auth-cap-');
    const users = await UserStore.open(dataDir);
    await users.change({
      kind: 'add',
      name: 'alice',
      credentials: { 'SCRAM-SHA-256': deriveCredential('SCRAM-SHA-256', 'guess-77', 4096) },
    });
    await users.close();
    const auth = await BrokerAuthenticator.open(
      dataDir,
      { mechanisms: ['SCRAM-SHA-256'], maxFailuresPerMinute: 20 },
      { clientCertificates: false },
    );
    try {
      const sessions = Array.from({ length: 100 }, (_, i) => ({
        connection: new ConnectionAuth(auth, '10.6.6.6'),
        client: new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'alice', password: `guess-${i}` }),
      }));
      const firsts = await Promise.all(
        sessions.map(({ connection, client }) => {
          const writer = new BinaryWriter(64);
          authenticateStartCommand.encodeRequest(writer, {
            mechanism: 'SCRAM-SHA-256',
            message: Buffer.from(client.first()),
          });
          return connection.handle(Opcode.AUTHENTICATE_START, writer.finish());
        }),
      );
      const outcomes: string[] = [];
      for (let i = 0; i < sessions.length; i++) {
        const first = firsts[i]!;
        expect(first.kind).toBe('answer');
        if (first.kind !== 'answer') continue;
        const serverFirst = authenticateStartCommand.decodeResponse(new BinaryReader(first.payload)).message;
        const writer = new BinaryWriter(128);
        authenticateFinishCommand.encodeRequest(writer, {
          message: Buffer.from(sessions[i]!.client.final(serverFirst.toString())),
        });
        const outcome = await sessions[i]!.connection.handle(Opcode.AUTHENTICATE_FINISH, writer.finish());
        outcomes.push(outcome.kind === 'failed' ? outcome.error.codeName : outcome.kind);
      }
      expect(outcomes.filter((kind) => kind === 'AUTHENTICATION_FAILED')).toHaveLength(20);
      expect(outcomes.filter((kind) => kind === 'TOO_MANY_AUTHENTICATION_FAILURES')).toHaveLength(80);
      // guess-77 was right, and came after the cap: refused like the others.
      expect(outcomes[77]).toBe('TOO_MANY_AUTHENTICATION_FAILURES');
    } finally {
      await auth.users.close();
    }
  });
});
