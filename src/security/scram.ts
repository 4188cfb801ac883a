// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as sans-IO state machines: the client and
// server sides take and return the text messages of the exchange, nothing else (no sockets, no
// timers, no files). Channel binding is not supported: the client sends the GS2 header `n,,` and the
// server accepts only that (or an authzid equal to the user name). Passwords are normalized with
// NFKC (the core of SASLprep) before PBKDF2. The server never sees a password: it keeps the stored
// key and server key of each user (credentials.ts) and checks the client's proof against them.
//
// Messages (RFC 5802 §7), each a comma-separated list of `a=value` attributes:
//   client-first   n,[a=authzid],n=user,r=client-nonce
//   server-first   r=client-nonce+server-nonce,s=base64(salt),i=iterations
//   client-final   c=base64("n,,"),r=nonce,p=base64(ClientProof)
//   server-final   v=base64(ServerSignature)
// AuthMessage = client-first-bare "," server-first "," client-final-without-proof

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { errorOf } from '../protocol/error-codes.js';

/** The hash behind a SCRAM mechanism. SHA-1 is here for the RFC 5802 test vector only. */
export interface ScramSuite {
  readonly hash: 'sha1' | 'sha256' | 'sha512';
  readonly keyBytes: number;
}

export const SCRAM_MECHANISMS = {
  'SCRAM-SHA-256': { hash: 'sha256', keyBytes: 32 },
  'SCRAM-SHA-512': { hash: 'sha512', keyBytes: 64 },
} as const satisfies Record<string, ScramSuite>;

export type ScramMechanism = keyof typeof SCRAM_MECHANISMS;

export function isScramMechanism(name: string): name is ScramMechanism {
  return Object.hasOwn(SCRAM_MECHANISMS, name);
}

/** RFC 7677: at least 4096 iterations; a server offering fewer is refused by the client. */
export const MIN_ITERATIONS = 4096;
/** A bound so that a hostile server cannot make the client hash for minutes. */
export const MAX_ITERATIONS = 10_000_000;
/** Longest user name, nonce and message accepted (a message stays far below a control frame). */
export const MAX_USERNAME_LENGTH = 255;
const MAX_NONCE_LENGTH = 256;
const MAX_MESSAGE_LENGTH = 4096;
const GS2_HEADER = 'n,,';
const NONCE_BYTES = 24;

/** SCRAM's keys for one salted password (RFC 5802 §3). */
export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

function hmac(suite: ScramSuite, key: Buffer, text: string): Buffer {
  return createHmac(suite.hash, key).update(text, 'utf8').digest();
}

/** Hi(Normalize(password), salt, i): PBKDF2 with the suite's HMAC. */
export function saltedPassword(
  suite: ScramSuite,
  password: string,
  salt: Buffer,
  iterations: number,
): Buffer {
  return pbkdf2Sync(
    Buffer.from(password.normalize('NFKC'), 'utf8'),
    salt,
    iterations,
    suite.keyBytes,
    suite.hash,
  );
}

export function scramKeys(suite: ScramSuite, salted: Buffer): ScramKeys {
  const clientKey = hmac(suite, salted, 'Client Key');
  return {
    clientKey,
    storedKey: createHash(suite.hash).update(clientKey).digest(),
    serverKey: hmac(suite, salted, 'Server Key'),
  };
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality (lengths are public: both are the suite's key length when honest). */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A SCRAM failure: `detail` says what (for the broker's log); the wire gets AUTHENTICATION_FAILED. */
function scramError(detail: string) {
  return errorOf('AUTHENTICATION_FAILED', detail);
}

/** RFC 5802 saslname: `=` and `,` are written `=3D` and `=2C`. */
export function encodeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export function decodeSaslName(text: string): string {
  if (/=(?!3D|2C)/.test(text)) throw scramError('user name has a "=" not written as =3D or =2C');
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** A nonce: printable ASCII except ','. */
function checkNonce(nonce: string, what: string): void {
  if (nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH || !/^[\x21-\x2b\x2d-\x7e]+$/.test(nonce))
    throw scramError(`${what} is not 1..${MAX_NONCE_LENGTH} printable characters without ","`);
}

function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64.test(text)) throw scramError(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/**
 * Splits `a=x,b=y` into its attributes, which must be exactly `names` in that order (no
 * extensions: RFC 5802's mandatory-extension `m` and any other are refused).
 */
function attributes(message: string, names: readonly string[], what: string): string[] {
  if (message.length > MAX_MESSAGE_LENGTH) throw scramError(`${what} is longer than ${MAX_MESSAGE_LENGTH}`);
  const parts = message.split(',');
  if (parts.length !== names.length)
    throw scramError(`${what} must have the attributes ${names.join(',')} (got ${parts.length} parts)`);
  return parts.map((part, i) => {
    if (part.length < 2 || part[0] !== names[i] || part[1] !== '=')
      throw scramError(`${what}: attribute ${i + 1} must be "${names[i]}="`);
    return part.slice(2);
  });
}

function parseIterations(text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text)) throw scramError('iteration count is not a positive integer');
  return Number(text);
}

export interface ScramClientOptions {
  readonly mechanism: ScramMechanism;
  readonly username: string;
  readonly password: string;
  /** The client nonce (tests use the RFC's); random by default. */
  readonly nonce?: string;
  /** Test vectors only: the hash suite instead of the mechanism's. */
  readonly suite?: ScramSuite;
}

/**
 * The client side: `first()`, then `final(serverFirst)`, then `verify(serverFinal)`, which checks
 * the broker's signature (the broker proves it knows the credential, too). Each step runs once.
 */
export class ScramClient {
  private readonly suite: ScramSuite;
  private readonly nonce: string;
  private readonly firstBare: string;
  private state: 'first' | 'final' | 'verify' | 'done' = 'first';
  private expectedServerSignature: Buffer | null = null;
  private readonly password: string;

  constructor(options: ScramClientOptions) {
    this.suite = options.suite ?? SCRAM_MECHANISMS[options.mechanism];
    if (options.username.length === 0 || options.username.length > MAX_USERNAME_LENGTH)
      throw errorOf('INVALID_CREDENTIAL', `user name must be 1..${MAX_USERNAME_LENGTH} characters`);
    this.nonce = options.nonce ?? newNonce();
    checkNonce(this.nonce, 'client nonce');
    this.firstBare = `n=${encodeSaslName(options.username)},r=${this.nonce}`;
    this.password = options.password;
  }

  first(): string {
    this.step('first', 'final');
    return GS2_HEADER + this.firstBare;
  }

  final(serverFirst: string): string {
    this.step('final', 'verify');
    const [nonce, salt64, iterationsText] = attributes(serverFirst, ['r', 's', 'i'], 'server-first message');
    checkNonce(nonce!, 'nonce');
    if (!nonce!.startsWith(this.nonce) || nonce!.length === this.nonce.length)
      throw scramError('the broker did not extend the client nonce');
    const salt = decodeBase64(salt64!, 'salt');
    if (salt.length === 0) throw scramError('the salt is empty');
    const iterations = parseIterations(iterationsText!);
    if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS)
      throw scramError(
        `the broker asks for ${iterations} iterations, outside ${MIN_ITERATIONS}..${MAX_ITERATIONS}`,
      );
    const keys = scramKeys(this.suite, saltedPassword(this.suite, this.password, salt, iterations));
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const proof = xor(keys.clientKey, hmac(this.suite, keys.storedKey, authMessage));
    this.expectedServerSignature = hmac(this.suite, keys.serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Throws AUTHENTICATION_FAILED unless the broker's signature is the one its credential gives. */
  verify(serverFinal: string): void {
    this.step('verify', 'done');
    if (serverFinal.startsWith('e=')) throw scramError(`the broker refused: ${serverFinal.slice(2, 200)}`);
    const [signature64] = attributes(serverFinal, ['v'], 'server-final message');
    const signature = decodeBase64(signature64!, 'server signature');
    if (!constantTimeEqual(signature, this.expectedServerSignature!))
      throw scramError('the broker did not prove that it knows the credential (server signature differs)');
  }

  private step(expected: ScramClient['state'], next: ScramClient['state']): void {
    if (this.state !== expected)
      throw scramError(`SCRAM client: ${expected} step out of order (at ${this.state})`);
    this.state = next;
  }
}

/** What the server keeps of a user for one mechanism (never the password). */
export interface ScramCredential {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export interface ScramServerOptions {
  readonly mechanism: ScramMechanism;
  /** The credential of a user for this mechanism, or undefined when there is none. */
  readonly lookup: (username: string) => ScramCredential | undefined;
  /**
   * The salt and iteration count shown for a user without a credential, stable per name (so that
   * asking twice does not tell whether a user exists): see credentials.ts.
   */
  readonly decoy: (username: string) => { salt: Buffer; iterations: number };
  /** The server nonce part (tests use the RFC's); random by default. */
  readonly nonce?: string;
  /** Test vectors only: the hash suite instead of the mechanism's. */
  readonly suite?: ScramSuite;
}

/** Said to the client for a wrong password and for an unknown user alike (no user enumeration). */
export const WRONG_CREDENTIALS = 'wrong user name or password';

/**
 * The server side of one exchange: `first(clientFirst)` answers the server-first message,
 * `final(clientFinal)` checks the proof and answers the server-final message with the
 * authenticated user name. A session is used once: a second final (a replay) is refused, and a
 * client-final replayed on another session fails because that session's nonce differs.
 */
export class ScramServerSession {
  private readonly suite: ScramSuite;
  private readonly options: ScramServerOptions;
  private state: 'first' | 'final' | 'done' = 'first';
  private username = '';
  private credential: ScramCredential | undefined;
  private decoy: { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer } | null = null;
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(options: ScramServerOptions) {
    this.suite = options.suite ?? SCRAM_MECHANISMS[options.mechanism];
    this.options = options;
  }

  /** The user name of the exchange (known after `first`). */
  get user(): string {
    return this.username;
  }

  first(clientFirst: string): string {
    this.step('first', 'final');
    const gs2 = /^([^,]*),([^,]*),/.exec(clientFirst);
    if (gs2 === null) throw scramError('client-first message has no GS2 header');
    if (gs2[1] !== 'n')
      throw scramError(
        `channel binding "${gs2[1]!.slice(0, 20)}" is not supported: the GS2 flag must be "n"`,
      );
    const bare = clientFirst.slice(gs2[0].length);
    const [name, clientNonce] = attributes(bare, ['n', 'r'], 'client-first message');
    const username = decodeSaslName(name!);
    if (username.length === 0 || username.length > MAX_USERNAME_LENGTH)
      throw scramError(`user name must be 1..${MAX_USERNAME_LENGTH} characters`);
    if (gs2[2] !== '' && (!gs2[2]!.startsWith('a=') || decodeSaslName(gs2[2]!.slice(2)) !== username))
      throw scramError('an authorization identity other than the user name is not supported');
    checkNonce(clientNonce!, 'client nonce');
    this.username = username;
    this.clientFirstBare = bare;
    this.credential = this.options.lookup(username);
    let salt: Buffer;
    let iterations: number;
    if (this.credential === undefined) {
      // An unknown user goes through the same steps with a decoy credential that no proof matches.
      const decoy = this.options.decoy(username);
      const keyBytes = this.suite.keyBytes;
      this.decoy = { ...decoy, storedKey: randomBytes(keyBytes), serverKey: randomBytes(keyBytes) };
      ({ salt, iterations } = decoy);
    } else {
      ({ salt, iterations } = this.credential);
    }
    const serverNonce = this.options.nonce ?? newNonce();
    this.nonce = clientNonce + serverNonce;
    this.serverFirst = `r=${this.nonce},s=${salt.toString('base64')},i=${iterations}`;
    return this.serverFirst;
  }

  /** Checks the proof; returns the server-final message. Throws AUTHENTICATION_FAILED otherwise. */
  final(clientFinal: string): string {
    this.step('final', 'done');
    const [binding, nonce, proof64] = attributes(clientFinal, ['c', 'r', 'p'], 'client-final message');
    if (binding !== Buffer.from(GS2_HEADER).toString('base64'))
      throw scramError('channel binding data does not match the GS2 header "n,,"');
    if (nonce !== this.nonce) throw scramError('nonce does not match this exchange (replayed message?)');
    const proof = decodeBase64(proof64!, 'client proof');
    const credential = this.credential ?? this.decoy!;
    const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.suite, credential.storedKey, authMessage);
    // The same work for a short proof as for one of the right length (then refused).
    const clientKey = xor(proof.length === clientSignature.length ? proof : clientSignature, clientSignature);
    const storedKey = createHash(this.suite.hash).update(clientKey).digest();
    const matches =
      constantTimeEqual(storedKey, credential.storedKey) && proof.length === clientSignature.length;
    // One answer for both causes (no user enumeration); the cause is for the broker's log.
    if (!matches || this.credential === undefined)
      throw errorOf('AUTHENTICATION_FAILED', WRONG_CREDENTIALS, {
        cause: this.credential === undefined ? 'no such user' : 'proof differs',
      });
    return `v=${hmac(this.suite, credential.serverKey, authMessage).toString('base64')}`;
  }

  private step(expected: ScramServerSession['state'], next: ScramServerSession['state']): void {
    if (this.state !== expected)
      throw scramError(
        `SCRAM ${expected === 'first' ? 'client-first' : 'client-final'} message out of order`,
      );
    this.state = next;
  }
}
