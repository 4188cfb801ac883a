// Bearer tokens (`auth.mechanisms = ["token"]`): a service presents a signed JWT, the broker checks
// its signature against a configured public key (PEM) or a local JWKS file, its issuer, audience,
// expiry (`exp`, required) and `nbf`, and the connection becomes `User:<principal claim>`. Only
// asymmetric algorithms are accepted (the broker holds no secret that could sign a token; an HMAC
// token whose "secret" is the public key is refused), and never `alg: none`.
//
// The key file is checked at every verification (its inode, size and times): a rotated file is
// read again, so new keys apply to the next connection without a restart or a signal. A file that
// does not load (half-written, bad JSON) keeps the keys that ran before, and the failures say so.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';
import { TOKEN_ALGORITHMS } from './token-settings.js';

export { TOKEN_ALGORITHMS, type TokenAlgorithm } from './token-settings.js';

export interface TokenSettings {
  /** A public key (PEM: Ed25519, RSA or EC); exactly one of this and `jwksFile`. */
  readonly publicKeyFile?: string;
  /** A JSON Web Key Set (`{"keys": [...]}`); tokens name their key with `kid`. */
  readonly jwksFile?: string;
  /** The `iss` every token must carry. */
  readonly issuer: string;
  /** The `aud` every token must carry (one of its audiences). */
  readonly audience: string;
  /** The claim whose value is the user name (default `sub`). */
  readonly principalClaim?: string;
  /** Algorithms accepted (default: all of TOKEN_ALGORITHMS). */
  readonly algorithms?: readonly string[];
  /** Leeway for `exp` and `nbf`, in ms (default 0). */
  readonly clockToleranceMs?: number;
}

export interface VerifiedToken {
  /** `User:<claim>`. */
  readonly principal: string;
  /** When the token stops being valid (its `exp` plus the clock tolerance), epoch ms. */
  readonly expiresAt: number;
}

/** What a client is told: whether the token expired, is not valid yet, or is invalid, no more. */
export type TokenRefusal = 'expired' | 'not yet valid' | 'invalid';

const USER_NAME = /^[A-Za-z0-9._@-]+$/;

type KeySource = KeyObject | JWTVerifyGetKey;

interface LoadedKeys {
  readonly source: KeySource;
  /** The file's identity when read: a different one means it changed. */
  readonly stamp: string;
}

function fileStamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function loadKeys(path: string, kind: 'pem' | 'jwks'): LoadedKeys {
  const stamp = fileStamp(path);
  const text = readFileSync(path, 'utf8');
  if (kind === 'pem') {
    const key = createPublicKey(text);
    if (!['ed25519', 'ed448', 'rsa', 'rsa-pss', 'ec'].includes(key.asymmetricKeyType ?? ''))
      throw new Error(`a ${key.asymmetricKeyType} key; expected Ed25519, RSA or EC`);
    return { source: key, stamp };
  }
  const jwks = JSON.parse(text) as JSONWebKeySet;
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys) || jwks.keys.length === 0)
    throw new Error('not a JSON Web Key Set: expected {"keys": [ ... ]} with at least one key');
  for (const key of jwks.keys)
    if (key.kty === 'oct' || typeof key.d === 'string')
      throw new Error(
        `key ${JSON.stringify(key.kid ?? '')} is secret or private; a JWKS here holds public keys`,
      );
  return { source: createLocalJWKSet(jwks), stamp };
}

function refused(refusal: TokenRefusal, detail: string): MemoryStreamerError {
  // The client reads the message; `cause` is for the broker's log only.
  return errorOf('AUTHENTICATION_FAILED', `bearer token ${refusal}`, { cause: detail });
}

/** Why jose refused a token, for the log; and what the client may be told. */
function refusalOf(error: unknown): { refusal: TokenRefusal; detail: string } {
  if (error instanceof errors.JWTExpired) return { refusal: 'expired', detail: error.message };
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf')
    return { refusal: 'not yet valid', detail: error.message };
  if (error instanceof errors.JOSEError)
    return { refusal: 'invalid', detail: `${error.code}: ${error.message}` };
  return { refusal: 'invalid', detail: (error as Error).message };
}

export class TokenVerifier {
  private readonly settings: TokenSettings;
  private readonly path: string;
  private readonly kind: 'pem' | 'jwks';
  private readonly algorithms: string[];
  private readonly claim: string;
  private keys: LoadedKeys;
  /** The last reload that failed (the keys before it stay): said in failures' log detail. */
  private reloadError: string | null = null;

  private constructor(settings: TokenSettings, path: string, kind: 'pem' | 'jwks', keys: LoadedKeys) {
    this.settings = settings;
    this.path = path;
    this.kind = kind;
    this.keys = keys;
    this.algorithms = [...(settings.algorithms ?? TOKEN_ALGORITHMS)];
    this.claim = settings.principalClaim ?? 'sub';
  }

  /** Checks the settings and reads the key file; INVALID_CONFIG naming what is wrong (fail closed). */
  static open(settings: TokenSettings): TokenVerifier {
    const files = [settings.publicKeyFile, settings.jwksFile].filter((f) => f !== undefined && f !== '');
    if (files.length !== 1)
      throw errorOf(
        'INVALID_CONFIG',
        'auth.mechanisms "token" needs exactly one of auth.token_public_key_file (PEM) and auth.token_jwks_file (JWKS)',
      );
    if (settings.issuer === '' || settings.audience === '')
      throw errorOf(
        'INVALID_CONFIG',
        'auth.mechanisms "token" needs auth.token_issuer and auth.token_audience (the iss and aud every token must carry)',
      );
    if ((settings.principalClaim ?? 'sub') === '')
      throw errorOf('INVALID_CONFIG', 'auth.token_principal_claim is empty');
    const algorithms = settings.algorithms ?? TOKEN_ALGORITHMS;
    const unknown = algorithms.filter((a) => !(TOKEN_ALGORITHMS as readonly string[]).includes(a));
    if (algorithms.length === 0 || unknown.length > 0)
      throw errorOf(
        'INVALID_CONFIG',
        `auth.token_algorithms ${JSON.stringify(unknown.length > 0 ? unknown : algorithms)}: accepted are ${TOKEN_ALGORITHMS.join(', ')}`,
      );
    const kind = settings.publicKeyFile !== undefined && settings.publicKeyFile !== '' ? 'pem' : 'jwks';
    const path = files[0]!;
    try {
      return new TokenVerifier(settings, path, kind, loadKeys(path, kind));
    } catch (error) {
      throw errorOf(
        'INVALID_CONFIG',
        `${kind === 'pem' ? 'auth.token_public_key_file' : 'auth.token_jwks_file'} ${path}: ${(error as Error).message}`,
      );
    }
  }

  /** The keys of the file as it is now: read again when it changed since. */
  private currentKeys(): KeySource {
    try {
      if (fileStamp(this.path) !== this.keys.stamp) {
        this.keys = loadKeys(this.path, this.kind);
        this.reloadError = null;
      }
    } catch (error) {
      this.reloadError = `${this.path} did not load (${(error as Error).message}); the keys read before stay`;
    }
    return this.keys.source;
  }

  /**
   * The principal of a valid token; AUTHENTICATION_FAILED saying only "expired", "not yet valid" or
   * "invalid" (the cause, for the log, says more).
   */
  async verify(token: string, now: number = Date.now()): Promise<VerifiedToken> {
    const source = this.currentKeys();
    const toleranceSec = (this.settings.clockToleranceMs ?? 0) / 1000;
    let payload: Record<string, unknown>;
    try {
      const options = {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: this.algorithms,
        clockTolerance: toleranceSec,
        currentDate: new Date(now),
        requiredClaims: ['exp'],
      };
      // Two calls for the two overloads of jose (a key, or a function that picks one by `kid`).
      const result =
        typeof source === 'function'
          ? await jwtVerify(token, source, options)
          : await jwtVerify(token, source, options);
      payload = result.payload as Record<string, unknown>;
    } catch (error) {
      const { refusal, detail } = refusalOf(error);
      throw refused(refusal, this.reloadError === null ? detail : `${detail}; ${this.reloadError}`);
    }
    const name = payload[this.claim];
    if (typeof name !== 'string' || !USER_NAME.test(name))
      throw refused(
        'invalid',
        `claim ${this.claim} ${name === undefined ? 'is missing' : `${JSON.stringify(String(name).slice(0, 64))} is not a user name`}`,
      );
    return { principal: `User:${name}`, expiresAt: (payload.exp as number) * 1000 + toleranceSec * 1000 };
  }
}
