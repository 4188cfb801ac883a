// Bearer-token verification (src/security/token-verifier.ts), with keys made by node:crypto and
// tokens signed by jose in the test: a valid token gives its principal and expiry; a wrong key,
// issuer or audience, an expired or not-yet-valid token, `alg: none`, an HMAC token keyed with the
// public key and malformed input are refused with AUTHENTICATION_FAILED saying only expired /
// not yet valid / invalid; a JWKS with two keys serves both, and a rewritten JWKS file applies at
// the next verification; bad settings do not open (fail closed); random and mutated tokens only
// ever produce clean refusals.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { base64url, exportJWK, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { MemoryStreamerError } from '../../src/common/errors.js';
import { type TokenSettings, TokenVerifier } from '../../src/security/token-verifier.js';
import { tempDir } from '../harness/temp-dir.js';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'memorystreamer';
const NOW = Date.UTC(2030, 0, 1);
const NOW_SEC = NOW / 1000;

function ed25519(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

interface Claims {
  sub?: string;
  iss?: string;
  aud?: string;
  exp?: number;
  nbf?: number;
  [claim: string]: unknown;
}

async function sign(
  key: KeyObject,
  claims: Claims = {},
  header: { alg?: string; kid?: string } = {},
): Promise<string> {
  const payload: Record<string, unknown> = {
    sub: 'svc',
    iss: ISSUER,
    aud: AUDIENCE,
    exp: NOW_SEC + 60,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({
      alg: header.alg ?? 'EdDSA',
      ...(header.kid !== undefined ? { kid: header.kid } : {}),
    })
    .sign(key);
}

async function pemVerifier(publicKey: KeyObject, settings: Partial<TokenSettings> = {}) {
  const dir = await tempDir('ms-token-');
  const file = join(dir, 'key.pem');
  await writeFile(file, publicKey.export({ type: 'spki', format: 'pem' }));
  return TokenVerifier.open({ publicKeyFile: file, issuer: ISSUER, audience: AUDIENCE, ...settings });
}

async function refusalOf(verifier: TokenVerifier, token: string, now = NOW): Promise<string> {
  const error = (await verifier.verify(token, now).then(
    () => null,
    (e: unknown) => e,
  )) as MemoryStreamerError | null;
  expect(error).toBeInstanceOf(MemoryStreamerError);
  expect(error!.codeName).toBe('AUTHENTICATION_FAILED');
  return error!.message;
}

describe('a token verifier with a PEM public key', () => {
  it('gives the principal and the expiry of a valid token', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey);
    const verified = await verifier.verify(await sign(keys.privateKey), NOW);
    expect(verified).toEqual({ principal: 'User:svc', expiresAt: NOW + 60_000 });
  });

  it('accepts RSA and EC keys too', async () => {
    for (const [type, alg] of [
      ['rsa', 'RS256'],
      ['ec', 'ES256'],
    ] as const) {
      const keys =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const verifier = await pemVerifier(keys.publicKey);
      const verified = await verifier.verify(await sign(keys.privateKey, {}, { alg }), NOW);
      expect(verified.principal).toBe('User:svc');
    }
  });

  it('takes the principal from the configured claim', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey, { principalClaim: 'client_id' });
    const token = await sign(keys.privateKey, { client_id: 'billing' });
    expect((await verifier.verify(token, NOW)).principal).toBe('User:billing');
    expect(await refusalOf(verifier, await sign(keys.privateKey))).toBe(
      'authentication failed: bearer token invalid',
    );
  });

  it('refuses a token signed by another key, for another issuer or audience, or malformed: "invalid"', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey);
    const other = ed25519();
    const cases = [
      await sign(other.privateKey),
      await sign(keys.privateKey, { iss: 'https://elsewhere.test' }),
      await sign(keys.privateKey, { aud: 'another-service' }),
      await sign(keys.privateKey, { sub: 'not a user name' }),
      await sign(keys.privateKey, { sub: undefined }),
      // No expiry: a token valid forever is not accepted.
      await sign(keys.privateKey, { exp: undefined }),
      'not.a.token',
      '',
      'eyJhbGciOiJFZERTQSJ9.e30',
    ];
    for (const token of cases)
      expect(await refusalOf(verifier, token)).toBe('authentication failed: bearer token invalid');
  });

  it('says a token expired, or is not valid yet; the clock tolerance widens both', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey);
    const expired = await sign(keys.privateKey, { exp: NOW_SEC - 5 });
    const early = await sign(keys.privateKey, { nbf: NOW_SEC + 5 });
    expect(await refusalOf(verifier, expired)).toBe('authentication failed: bearer token expired');
    expect(await refusalOf(verifier, early)).toBe('authentication failed: bearer token not yet valid');
    const tolerant = await pemVerifier(keys.publicKey, { clockToleranceMs: 10_000 });
    expect((await tolerant.verify(expired, NOW)).expiresAt).toBe(NOW + 5_000);
    expect((await tolerant.verify(early, NOW)).principal).toBe('User:svc');
  });

  it('refuses alg none, and an HMAC token keyed with the public key (algorithm confusion)', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey);
    const unsecured = new UnsecuredJWT({
      sub: 'svc',
      iss: ISSUER,
      aud: AUDIENCE,
      exp: NOW_SEC + 60,
    }).encode();
    expect(await refusalOf(verifier, unsecured)).toBe('authentication failed: bearer token invalid');
    const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const confused = await new SignJWT({ sub: 'svc', iss: ISSUER, aud: AUDIENCE, exp: NOW_SEC + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(pem));
    expect(await refusalOf(verifier, confused)).toBe('authentication failed: bearer token invalid');
  });

  it('accepts only the configured algorithms', async () => {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const verifier = await pemVerifier(keys.publicKey, { algorithms: ['PS256'] });
    expect(await refusalOf(verifier, await sign(keys.privateKey, {}, { alg: 'RS256' }))).toBe(
      'authentication failed: bearer token invalid',
    );
    const ps = await sign(keys.privateKey, {}, { alg: 'PS256' });
    expect((await verifier.verify(ps, NOW)).principal).toBe('User:svc');
  });

  it('does not open with settings that could not verify anything (fail closed)', async () => {
    const keys = ed25519();
    const dir = await tempDir('ms-token-bad-');
    const pem = join(dir, 'key.pem');
    await writeFile(pem, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'garbage.pem'), 'not a key');
    const base = { issuer: ISSUER, audience: AUDIENCE };
    const refusals: Array<[Partial<TokenSettings> & { issuer: string; audience: string }, RegExp]> = [
      [base, /exactly one of auth.token_public_key_file/],
      [{ ...base, publicKeyFile: pem, jwksFile: pem }, /exactly one of/],
      [{ ...base, publicKeyFile: pem, audience: '' }, /needs auth.token_issuer and auth.token_audience/],
      [{ ...base, publicKeyFile: pem, issuer: '' }, /needs auth.token_issuer and auth.token_audience/],
      [{ ...base, publicKeyFile: pem, algorithms: ['HS256'] }, /auth.token_algorithms \["HS256"\]/],
      [{ ...base, publicKeyFile: join(dir, 'missing.pem') }, /auth.token_public_key_file .*missing.pem/],
      [{ ...base, publicKeyFile: join(dir, 'garbage.pem') }, /auth.token_public_key_file/],
      [{ ...base, jwksFile: pem }, /auth.token_jwks_file/],
    ];
    for (const [settings, message] of refusals) {
      let error: unknown = null;
      try {
        TokenVerifier.open(settings);
      } catch (e) {
        error = e;
      }
      expect((error as MemoryStreamerError).codeName).toBe('INVALID_CONFIG');
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('a token verifier with a JWKS file', () => {
  async function jwksFile(...keys: Array<{ key: KeyObject; kid: string }>): Promise<string> {
    const dir = await tempDir('ms-jwks-');
    const file = join(dir, 'jwks.json');
    await writeJwks(file, ...keys);
    return file;
  }

  async function writeJwks(file: string, ...keys: Array<{ key: KeyObject; kid: string }>): Promise<void> {
    const jwks = {
      keys: await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.key)), kid: k.kid }))),
    };
    await writeFile(file, JSON.stringify(jwks));
  }

  it('verifies tokens signed by either of two keys, chosen by kid', async () => {
    const a = ed25519();
    const b = ed25519();
    const file = await jwksFile({ key: a.publicKey, kid: 'a' }, { key: b.publicKey, kid: 'b' });
    const verifier = TokenVerifier.open({ jwksFile: file, issuer: ISSUER, audience: AUDIENCE });
    const byA = await sign(a.privateKey, { sub: 'svc-a' }, { kid: 'a' });
    const byB = await sign(b.privateKey, { sub: 'svc-b' }, { kid: 'b' });
    expect((await verifier.verify(byA, NOW)).principal).toBe('User:svc-a');
    expect((await verifier.verify(byB, NOW)).principal).toBe('User:svc-b');
    // A kid that names the other key does not verify.
    expect(await refusalOf(verifier, await sign(a.privateKey, {}, { kid: 'b' }))).toBe(
      'authentication failed: bearer token invalid',
    );
  });

  it('follows a rotation of the file: the new key verifies, the removed one no longer does', async () => {
    const old = ed25519();
    const next = ed25519();
    const file = await jwksFile({ key: old.publicKey, kid: 'old' });
    const verifier = TokenVerifier.open({ jwksFile: file, issuer: ISSUER, audience: AUDIENCE });
    const byOld = await sign(old.privateKey, {}, { kid: 'old' });
    const byNext = await sign(next.privateKey, {}, { kid: 'next' });
    expect((await verifier.verify(byOld, NOW)).principal).toBe('User:svc');
    expect(await refusalOf(verifier, byNext)).toBe('authentication failed: bearer token invalid');

    // Both during the rotation, then the new one alone.
    await writeJwks(file, { key: old.publicKey, kid: 'old' }, { key: next.publicKey, kid: 'next' });
    expect((await verifier.verify(byNext, NOW)).principal).toBe('User:svc');
    expect((await verifier.verify(byOld, NOW)).principal).toBe('User:svc');
    await writeJwks(file, { key: next.publicKey, kid: 'next' });
    expect(await refusalOf(verifier, byOld)).toBe('authentication failed: bearer token invalid');

    // A half-written file keeps the keys that ran before, and the log detail says so.
    await writeFile(file, '{"keys": [');
    expect((await verifier.verify(byNext, NOW)).principal).toBe('User:svc');
    const error = (await verifier.verify(byOld, NOW).catch((e: unknown) => e)) as MemoryStreamerError;
    expect(String(error.cause)).toMatch(/did not load .*the keys read before stay/);
  });

  it('refuses a JWKS holding a private or secret key', async () => {
    const keys = ed25519();
    const dir = await tempDir('ms-jwks-private-');
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [{ ...(await exportJWK(keys.privateKey)), kid: 'k' }] }));
    expect(() => TokenVerifier.open({ jwksFile: file, issuer: ISSUER, audience: AUDIENCE })).toThrow(
      /secret or private/,
    );
  });
});

describe('fuzz: random and mutated tokens', () => {
  const budgetMs = process.env.CI === 'true' ? 10_000 : 1500;

  it('only clean AUTHENTICATION_FAILED errors, and a mutated token authenticates only if it decodes the same', async () => {
    const keys = ed25519();
    const verifier = await pemVerifier(keys.publicKey);
    const valid = await sign(keys.privateKey);
    const decoded = (token: string) =>
      token.split('.').map((part) => Buffer.from(base64url.decode(part)).toString('hex'));
    const mutated = fc
      .tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 0x7f }), fc.boolean())
      .map(([at, code, remove]) =>
        remove
          ? valid.slice(0, at) + valid.slice(at + 1)
          : valid.slice(0, at) + String.fromCharCode(code) + valid.slice(at + 1),
      );
    const inputs = fc.oneof(
      mutated,
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
    );
    const deadline = Date.now() + budgetMs;
    await fc.assert(
      fc.asyncProperty(inputs, async (token) => {
        if (Date.now() > deadline) return;
        try {
          await verifier.verify(token, NOW);
        } catch (error) {
          if (!(error instanceof MemoryStreamerError) || error.codeName !== 'AUTHENTICATION_FAILED')
            throw error;
          return;
        }
        // Base64url may spell the same bytes two ways (unused low bits): the same token, then.
        expect(decoded(token)).toEqual(decoded(valid));
      }),
      { numRuns: 600 },
    );
  });
});
