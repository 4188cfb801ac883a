// SCRAM client and server state machines: the RFC 5802 (SHA-1) and RFC 7677 (SHA-256) test vectors
// message by message, both mechanisms end to end, wrong passwords and unknown users (same error),
// replays, and random or mutated messages at the server where the only acceptable outcome is a
// clean AUTHENTICATION_FAILED (fast-check, time-boxed; longer when CI=true).

import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { deriveCredential } from '../../src/security/credentials.js';
import {
  decodeSaslName,
  encodeSaslName,
  SCRAM_MECHANISMS,
  ScramClient,
  type ScramCredential,
  type ScramMechanism,
  ScramServerSession,
  type ScramSuite,
  saltedPassword,
  scramKeys,
  WRONG_CREDENTIALS,
} from '../../src/security/scram.js';

function credentialFrom(
  suite: ScramSuite,
  password: string,
  salt: Buffer,
  iterations: number,
): ScramCredential {
  const keys = scramKeys(suite, saltedPassword(suite, password, salt, iterations));
  return { salt, iterations, storedKey: keys.storedKey, serverKey: keys.serverKey };
}

const decoy = () => ({ salt: Buffer.alloc(16, 7), iterations: 4096 });

function authFailed(run: () => unknown): MemoryStreamerError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(MemoryStreamerError);
    expect((error as MemoryStreamerError).codeName).toBe('AUTHENTICATION_FAILED');
    return error as MemoryStreamerError;
  }
  throw new Error('expected AUTHENTICATION_FAILED');
}

describe('RFC test vectors', () => {
  const vectors = [
    {
      rfc: 'RFC 5802 §5 (SCRAM-SHA-1)',
      suite: { hash: 'sha1', keyBytes: 20 } as const,
      clientNonce: 'fyko+d2lbbFgONRv9qkxdawL',
      serverNonce: '3rfcNHYJY1ZVvWVs7j',
      salt: 'QSXCR+Q6sek8bf92',
      clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
      serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
      clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
      serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
    },
    {
      rfc: 'RFC 7677 §3 (SCRAM-SHA-256)',
      suite: SCRAM_MECHANISMS['SCRAM-SHA-256'],
      clientNonce: 'rOprNGfwEbeRWgbNEkqO',
      serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
      salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
      clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
      serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      clientFinal:
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    },
  ];

  for (const v of vectors) {
    it(`${v.rfc}: the client writes the RFC's messages and accepts the server's`, () => {
      const client = new ScramClient({
        mechanism: 'SCRAM-SHA-256',
        suite: v.suite,
        username: 'user',
        password: 'pencil',
        nonce: v.clientNonce,
      });
      expect(client.first()).toBe(v.clientFirst);
      expect(client.final(v.serverFirst)).toBe(v.clientFinal);
      expect(() => client.verify(v.serverFinal)).not.toThrow();
    });

    it(`${v.rfc}: the server answers the RFC's messages`, () => {
      const credential = credentialFrom(v.suite, 'pencil', Buffer.from(v.salt, 'base64'), 4096);
      const server = new ScramServerSession({
        mechanism: 'SCRAM-SHA-256',
        suite: v.suite,
        lookup: (name) => (name === 'user' ? credential : undefined),
        decoy,
        nonce: v.serverNonce,
      });
      expect(server.first(v.clientFirst)).toBe(v.serverFirst);
      expect(server.final(v.clientFinal)).toBe(v.serverFinal);
      expect(server.user).toBe('user');
    });
  }

  it('the stored key and server key are the RFC 5802 §3 definitions (checked against node:crypto directly)', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const keys = scramKeys(
      SCRAM_MECHANISMS['SCRAM-SHA-256'],
      saltedPassword(SCRAM_MECHANISMS['SCRAM-SHA-256'], 'pencil', salt, 4096),
    );
    expect(keys.storedKey).toEqual(createHash('sha256').update(clientKey).digest());
    expect(keys.serverKey).toEqual(createHmac('sha256', salted).update('Server Key').digest());
  });
});

describe('SCRAM exchanges', () => {
  const users = new Map<string, Partial<Record<ScramMechanism, ScramCredential>>>();
  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const)
    users.set('alice', {
      ...users.get('alice'),
      [mechanism]: deriveCredential(mechanism, 'correct horse', 4096),
    });

  function server(mechanism: ScramMechanism) {
    return new ScramServerSession({ mechanism, lookup: (name) => users.get(name)?.[mechanism], decoy });
  }

  function exchange(mechanism: ScramMechanism, username: string, password: string) {
    const client = new ScramClient({ mechanism, username, password });
    const session = server(mechanism);
    const serverFirst = session.first(client.first());
    const clientFinal = client.final(serverFirst);
    return { client, session, serverFirst, clientFinal };
  }

  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
    it(`${mechanism}: the right password authenticates both ways`, () => {
      const { client, session, clientFinal } = exchange(mechanism, 'alice', 'correct horse');
      client.verify(session.final(clientFinal));
      expect(session.user).toBe('alice');
    });

    it(`${mechanism}: a wrong password and an unknown user fail with the same message`, () => {
      const wrong = exchange(mechanism, 'alice', 'wrong horse');
      const wrongError = authFailed(() => wrong.session.final(wrong.clientFinal));
      const unknown = exchange(mechanism, 'mallory', 'correct horse');
      const unknownError = authFailed(() => unknown.session.final(unknown.clientFinal));
      expect(wrongError.message).toBe(unknownError.message);
      expect(wrongError.message).toContain(WRONG_CREDENTIALS);
      // The causes differ, for the broker's log only.
      expect([wrongError.cause, unknownError.cause]).toEqual(['proof differs', 'no such user']);
    });
  }

  it('an unknown user is shown a salt and iteration count like a real one, the same on every attempt', () => {
    const first = exchange('SCRAM-SHA-256', 'mallory', 'x').serverFirst;
    const second = exchange('SCRAM-SHA-256', 'mallory', 'x').serverFirst;
    const saltOf = (message: string) => /,s=([^,]+),i=(\d+)$/.exec(message)!.slice(1);
    expect(saltOf(first)).toEqual(saltOf(second));
    expect(Buffer.from(saltOf(first)[0]!, 'base64')).toHaveLength(16);
    expect(saltOf(exchange('SCRAM-SHA-256', 'alice', 'x').serverFirst)[1]).toBe(saltOf(first)[1]);
  });

  it('a client-final message replayed on the same session or on a new one is refused', () => {
    const { client, session, clientFinal } = exchange('SCRAM-SHA-256', 'alice', 'correct horse');
    client.verify(session.final(clientFinal));
    authFailed(() => session.final(clientFinal));
    // A new session has a new server nonce: the recorded proof does not belong to it.
    const next = server('SCRAM-SHA-256');
    next.first(new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'alice', password: 'x' }).first());
    expect(authFailed(() => next.final(clientFinal)).message).toContain('nonce');
  });

  it('the client refuses a server that does not know the credential', () => {
    const { client, clientFinal } = exchange('SCRAM-SHA-256', 'alice', 'correct horse');
    expect(clientFinal).toContain(',p=');
    authFailed(() => client.verify(`v=${Buffer.alloc(32).toString('base64')}`));
  });

  it('the client refuses too few iterations and a nonce it did not start', () => {
    const client = new ScramClient({
      mechanism: 'SCRAM-SHA-256',
      username: 'u',
      password: 'p',
      nonce: 'abc',
    });
    client.first();
    expect(authFailed(() => client.final('r=abcdef,s=QUJD,i=1000')).message).toContain('iterations');
    const other = new ScramClient({ mechanism: 'SCRAM-SHA-256', username: 'u', password: 'p', nonce: 'abc' });
    other.first();
    authFailed(() => other.final('r=xyzdef,s=QUJD,i=4096'));
  });

  it('the server refuses channel binding, another authorization identity and extensions', () => {
    authFailed(() => server('SCRAM-SHA-256').first('y,,n=alice,r=abc'));
    authFailed(() => server('SCRAM-SHA-256').first('p=tls-unique,,n=alice,r=abc'));
    authFailed(() => server('SCRAM-SHA-256').first('n,a=bob,n=alice,r=abc'));
    authFailed(() => server('SCRAM-SHA-256').first('n,,n=alice,r=abc,m=ext'));
    expect(server('SCRAM-SHA-256').first('n,a=alice,n=alice,r=abc')).toMatch(/^r=abc/);
  });

  it('user names escape "=" and "," (RFC 5802 saslname)', () => {
    expect(encodeSaslName('a=b,c')).toBe('a=3Db=2Cc');
    expect(decodeSaslName('a=3Db=2Cc')).toBe('a=b,c');
    authFailed(() => decodeSaslName('a=4Eb'));
  });
});

describe('fuzz: random and mutated messages at the server', () => {
  const budgetMs = process.env.CI === 'true' ? 20_000 : 1500;
  const credential = deriveCredential('SCRAM-SHA-256', 'pw', 4096);
  const lookup = (name: string) => (name === 'alice' ? credential : undefined);
  const valid = (() => {
    const client = new ScramClient({
      mechanism: 'SCRAM-SHA-256',
      username: 'alice',
      password: 'pw',
      nonce: 'cnonce',
    });
    const session = new ScramServerSession({ mechanism: 'SCRAM-SHA-256', lookup, decoy, nonce: 'snonce' });
    const first = client.first();
    const final = client.final(session.first(first));
    return { first, final };
  })();

  /** A fresh session through `first`, then `final`; only AUTHENTICATION_FAILED may come out. */
  function run(first: string, final: string): void {
    const session = new ScramServerSession({ mechanism: 'SCRAM-SHA-256', lookup, decoy, nonce: 'snonce' });
    for (const step of [() => session.first(first), () => session.final(final)]) {
      try {
        step();
      } catch (error) {
        if (!(error instanceof MemoryStreamerError) || error.codeName !== 'AUTHENTICATION_FAILED')
          throw error;
        return;
      }
    }
  }

  const mutated = (text: string) =>
    fc
      .tuple(fc.nat(text.length - 1), fc.integer({ min: 0, max: 0x7f }), fc.boolean())
      .map(([at, code, remove]) =>
        remove
          ? text.slice(0, at) + text.slice(at + 1)
          : text.slice(0, at) + String.fromCharCode(code) + text.slice(at + 1),
      );

  it('only clean AUTHENTICATION_FAILED errors, and a mutated proof never authenticates', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
          mutated(valid.first),
        ),
        fc.oneof(fc.string({ maxLength: 300 }), mutated(valid.final)),
        (first, final) => {
          run(first, final);
          if (first === valid.first && final !== valid.final) {
            const session = new ScramServerSession({
              mechanism: 'SCRAM-SHA-256',
              lookup,
              decoy,
              nonce: 'snonce',
            });
            session.first(first);
            let accepted = false;
            try {
              session.final(final);
              accepted = true;
            } catch {}
            // Base64 has unused bits in its last character: only a message that says the same may pass.
            if (accepted) {
              const proofOf = (m: string) => Buffer.from(m.slice(m.lastIndexOf(',p=') + 3), 'base64');
              expect(final.slice(0, final.lastIndexOf(',p='))).toBe(
                valid.final.slice(0, valid.final.lastIndexOf(',p=')),
              );
              expect(proofOf(final)).toEqual(proofOf(valid.final));
            }
          }
        },
      ),
      { numRuns: 1_000_000, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false },
    );
  });
});
