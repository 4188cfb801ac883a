// The broker's side of authentication: which mechanisms it accepts, its users, its super-users
// and the rate limit of failures, shared by every connection; and, per connection, the requests
// AUTHENTICATE_START / AUTHENTICATE_FINISH / USER_LIST / USER_ALTER turned into answers. It knows
// nothing of sockets: the connection passes payloads in, sends what comes out, logs, and waits the
// delay of a failure before answering it.

import type { MemoryStreamerError } from '../common/errors.js';
import { BinaryReader } from '../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../protocol/codec/binary-writer.js';
import {
  authenticateFinishCommand,
  authenticateStartCommand,
  UserAction,
  userAlterCommand,
  userListCommand,
} from '../protocol/commands/auth-commands.js';
import { errorOf } from '../protocol/error-codes.js';
import { Opcode } from '../protocol/opcodes.js';
import { checkIterations, DEFAULT_ITERATIONS } from './credentials.js';
import { FailureLimiter } from './failure-limiter.js';
import { isScramMechanism, type ScramMechanism, ScramServerSession } from './scram.js';
import { type TokenSettings, TokenVerifier } from './token-verifier.js';
import { type UserCredentials, UserStore } from './user-store.js';

/**
 * How a client may authenticate: a SCRAM mechanism, or `mtls`, its TLS client certificate (verified
 * against the listener's CA), whose subject's common name is the user: `CN=alice` is `User:alice`;
 * or `token`, a signed JWT (token-verifier.ts).
 */
export type AuthMechanism = ScramMechanism | 'mtls' | 'token';

export interface BrokerAuthOptions {
  /** Mechanisms clients may authenticate with; at least one (an empty list is no authentication). */
  readonly mechanisms: readonly AuthMechanism[];
  /** Principals (`User:admin`) allowed to manage users over the wire. */
  readonly superUsers?: readonly string[];
  /** Iterations of new credentials, and the fewest accepted over the wire (default 4096). */
  readonly scramIterations?: number;
  /** Delay before answering a first failure from an address, doubled per failure in the last minute. */
  readonly failureDelayMs?: number;
  /** Largest such delay (default 5 s). */
  readonly maxFailureDelayMs?: number;
  /** Failures an address may have within a minute before its attempts are refused at once. */
  readonly maxFailuresPerMinute?: number;
  /** How bearer tokens are verified: required with the `token` mechanism. */
  readonly token?: TokenSettings;
  /** Where the users are (default: the users file of the data directory; a cluster's are in etcd). */
  readonly openUsers?: (dataDir: string, onResync?: (reason: string) => void) => Promise<UserStore>;
  /** Principals of the brokers of the cluster: the only ones served inter-broker requests. */
  readonly brokerPrincipals?: readonly string[];
}

const PRINCIPAL_PATTERN = /^User:[A-Za-z0-9._@-]+$/;

export function checkPrincipal(principal: string): void {
  if (!PRINCIPAL_PATTERN.test(principal))
    throw errorOf('INVALID_CONFIG', `principal ${JSON.stringify(principal)}: expected User:<name>`);
}

/** `User:<common name>` of a verified client certificate, or null when the name cannot be a user. */
export function certificatePrincipal(commonName: unknown): string | null {
  const principal = `User:${String(commonName)}`;
  return typeof commonName === 'string' && PRINCIPAL_PATTERN.test(principal) ? principal : null;
}

export class BrokerAuthenticator {
  /** The SCRAM mechanisms accepted (AUTHENTICATE_START). */
  readonly mechanisms: readonly ScramMechanism[];
  /** A verified client certificate authenticates its connection (`mtls`). */
  readonly mtls: boolean;
  /** Verifies bearer tokens (`token`); null when that mechanism is off. */
  readonly tokens: TokenVerifier | null;
  readonly superUsers: ReadonlySet<string>;
  readonly brokerPrincipals: ReadonlySet<string>;
  readonly iterations: number;
  readonly users: UserStore;
  readonly limiter: FailureLimiter;
  /** The answer to a request before authentication (built once: it is the same for all). */
  readonly required: MemoryStreamerError;

  private constructor(users: UserStore, options: BrokerAuthOptions, tokens: TokenVerifier | null) {
    this.users = users;
    this.mechanisms = options.mechanisms.filter(isScramMechanism);
    this.mtls = options.mechanisms.includes('mtls');
    this.tokens = tokens;
    this.superUsers = new Set(options.superUsers ?? []);
    this.brokerPrincipals = new Set(options.brokerPrincipals ?? []);
    this.iterations = options.scramIterations ?? DEFAULT_ITERATIONS;
    this.limiter = new FailureLimiter({
      baseDelayMs: options.failureDelayMs ?? 200,
      maxDelayMs: options.maxFailureDelayMs ?? 5000,
      maxPerMinute: options.maxFailuresPerMinute ?? 20,
    });
    this.required = errorOf(
      'AUTHENTICATION_FAILED',
      `this broker requires authentication (${options.mechanisms.join(', ')}) before any other request${this.mtls ? ' (mtls: a client certificate signed by its CA, whose common name is a user name)' : ''}`,
    );
  }

  /**
   * Opens the users of the data directory. Fails closed: a broker with authentication on and no
   * user would refuse every client, so it does not start (INVALID_CONFIG saying how to add one).
   */
  static async open(
    dataDir: string,
    options: BrokerAuthOptions,
    listener: { clientCertificates: boolean },
  ): Promise<BrokerAuthenticator> {
    if (options.mechanisms.length === 0)
      throw errorOf('INVALID_CONFIG', 'auth.mechanisms is empty: authentication is off');
    if (options.mechanisms.includes('mtls') && !listener.clientCertificates)
      throw errorOf(
        'INVALID_CONFIG',
        'auth.mechanisms "mtls" needs TLS with client certificates: server.tls_cert_file, server.tls_ca_file and server.tls_client_auth = "require" (or "request")',
      );
    for (const principal of options.superUsers ?? []) checkPrincipal(principal);
    checkIterations(options.scramIterations ?? DEFAULT_ITERATIONS);
    const tokens = options.mechanisms.includes('token') ? TokenVerifier.open(tokenSettingsOf(options)) : null;
    for (const principal of options.brokerPrincipals ?? []) checkPrincipal(principal);
    const users = await (options.openUsers ?? UserStore.open)(dataDir);
    // Certificates and tokens need no users; SCRAM without users would let no client in.
    if (users.size === 0 && options.mechanisms.some(isScramMechanism)) {
      await users.close();
      throw errorOf(
        'INVALID_CONFIG',
        `auth.mechanisms = [${options.mechanisms.map((m) => `"${m}"`).join(', ')}] but ${users.path} holds no user, so no client could connect; add one first: ${users.addCommand}`,
      );
    }
    return new BrokerAuthenticator(users, options, tokens);
  }

  isSuperUser(principal: string | null): boolean {
    return principal !== null && this.superUsers.has(principal);
  }

  /** A principal of one of the cluster's brokers (inter-broker requests are for them only). */
  isBroker(principal: string | null): boolean {
    return principal !== null && this.brokerPrincipals.has(principal);
  }
}

function tokenSettingsOf(options: BrokerAuthOptions): TokenSettings {
  if (options.token === undefined)
    throw errorOf(
      'INVALID_CONFIG',
      'auth.mechanisms "token" needs auth.token_issuer, auth.token_audience and auth.token_public_key_file or auth.token_jwks_file',
    );
  return options.token;
}

/** What a connection does with an authentication or user request. */
export type AuthOutcome =
  /** Send this payload as the answer. */
  | { kind: 'answer'; payload: Buffer }
  /**
   * The connection is now authenticated as `principal`: send the answer. `expiresAt` (epoch ms,
   * bearer tokens): close the connection then with TOKEN_EXPIRED (token-expiry.ts).
   */
  | {
      kind: 'authenticated';
      payload: Buffer;
      principal: string;
      mechanism: ScramMechanism | 'token';
      expiresAt?: number;
    }
  /** Answer with this error; the connection stays as it is. */
  | { kind: 'refused'; error: MemoryStreamerError }
  /**
   * Authentication failed: wait `delayMs`, answer with the error, close the connection. `reason`
   * is for the log only (it may say that the user does not exist).
   */
  | { kind: 'failed'; error: MemoryStreamerError; delayMs: number; user: string; reason: string };

/** Opcodes a connection handles through ConnectionAuth (answered before authentication too). */
export function isAuthOpcode(opcode: number): boolean {
  return opcode >= Opcode.AUTHENTICATE_START && opcode <= Opcode.USER_ALTER;
}

/** Authentication state of one connection. */
export class ConnectionAuth {
  /** `User:<name>` once authenticated; null before. */
  principal: string | null = null;
  private session: ScramServerSession | null = null;
  private mechanism: ScramMechanism | null = null;
  /** Authenticated by its client certificate: a SCRAM exchange may still name the user instead. */
  private byCertificate = false;
  private readonly authenticator: BrokerAuthenticator | null;
  private readonly address: string;

  /** The connection was authenticated by other means (its verified client certificate). */
  authenticatedAs(principal: string): void {
    this.principal = principal;
    this.byCertificate = true;
  }

  /** `authenticator` null: authentication is off on this broker. */
  constructor(authenticator: BrokerAuthenticator | null, address: string) {
    this.authenticator = authenticator;
    this.address = address;
  }

  async handle(opcode: number, payload: Buffer): Promise<AuthOutcome> {
    try {
      const reader = new BinaryReader(payload);
      switch (opcode) {
        case Opcode.AUTHENTICATE_START: {
          const request = authenticateStartCommand.decodeRequest(reader);
          reader.end();
          return await this.start(request.mechanism, request.message);
        }
        case Opcode.AUTHENTICATE_FINISH: {
          const request = authenticateFinishCommand.decodeRequest(reader);
          reader.end();
          return this.finish(request.message);
        }
        case Opcode.USER_LIST:
          reader.end();
          return this.listUsers();
        default: {
          const request = userAlterCommand.decodeRequest(reader);
          reader.end();
          return await this.alterUser(request);
        }
      }
    } catch (error) {
      return { kind: 'refused', error: error as MemoryStreamerError };
    }
  }

  private enabled(): BrokerAuthenticator {
    if (this.authenticator === null)
      throw errorOf(
        'UNSUPPORTED_SASL_MECHANISM',
        'authentication is off on this broker (auth.mechanisms is empty)',
      );
    return this.authenticator;
  }

  private async start(mechanism: string, message: Buffer): Promise<AuthOutcome> {
    const auth = this.enabled();
    if (this.principal !== null && !this.byCertificate)
      throw errorOf('INVALID_REQUEST', `already authenticated as ${this.principal}`);
    if (this.session !== null) throw errorOf('INVALID_REQUEST', 'an authentication is already in progress');
    if (mechanism === 'token' && auth.tokens !== null)
      return this.rateLimited(auth) ?? (await this.startToken(auth.tokens, message));
    if (!isScramMechanism(mechanism) || !auth.mechanisms.includes(mechanism))
      throw errorOf(
        'UNSUPPORTED_SASL_MECHANISM',
        `${JSON.stringify(mechanism.slice(0, 40))}; this broker accepts ${[...auth.mechanisms, ...(auth.tokens !== null ? ['token'] : [])].join(', ')}`,
      );
    const limited = this.rateLimited(auth);
    if (limited !== null) return limited;
    // Users added or changed offline since the last authentication apply now.
    await auth.users.refresh();
    const session = new ScramServerSession({
      mechanism,
      lookup: (name) => auth.users.credential(name, mechanism),
      decoy: (name) => ({ salt: auth.users.decoySalt(mechanism, name), iterations: auth.iterations }),
    });
    this.session = session;
    this.mechanism = mechanism;
    try {
      const serverFirst = session.first(message.toString('utf8'));
      const writer = new BinaryWriter(128);
      authenticateStartCommand.encodeResponse(writer, { message: Buffer.from(serverFirst, 'utf8') });
      return { kind: 'answer', payload: writer.finish() };
    } catch (error) {
      return this.failure(error as MemoryStreamerError, session.user);
    }
  }

  /** An address with too many recent failures is refused before its attempt is looked at. */
  private rateLimited(auth: BrokerAuthenticator): AuthOutcome | null {
    const blockedMs = auth.limiter.blockedForMs(this.address);
    if (blockedMs === 0) return null;
    return {
      kind: 'failed',
      error: errorOf(
        'TOO_MANY_AUTHENTICATION_FAILURES',
        `from ${this.address}; retry in ${Math.ceil(blockedMs / 1000)} s`,
      ),
      delayMs: 0,
      user: '',
      reason: 'rate limited',
    };
  }

  /** `token`: one round trip; the answer's message is the principal (auth-commands.ts). */
  private async startToken(tokens: TokenVerifier, message: Buffer): Promise<AuthOutcome> {
    try {
      const { principal, expiresAt } = await tokens.verify(message.toString('utf8'));
      this.principal = principal;
      this.byCertificate = false;
      const writer = new BinaryWriter(64);
      authenticateStartCommand.encodeResponse(writer, { message: Buffer.from(principal, 'utf8') });
      return { kind: 'authenticated', payload: writer.finish(), principal, mechanism: 'token', expiresAt };
    } catch (error) {
      return this.failure(error as MemoryStreamerError, '');
    }
  }

  private finish(message: Buffer): AuthOutcome {
    const auth = this.enabled();
    const session = this.session;
    if (session === null || this.mechanism === null)
      return this.failure(
        errorOf('AUTHENTICATION_FAILED', 'AUTHENTICATE_FINISH before AUTHENTICATE_START'),
        '',
      );
    this.session = null;
    // Checked again here, where the proof is: sessions started on many connections at once, before
    // any of their proofs failed, would otherwise each have a guess past the limit.
    const limited = this.rateLimited(auth);
    if (limited !== null) return limited;
    try {
      const serverFinal = session.final(message.toString('utf8'));
      const principal = `User:${session.user}`;
      this.principal = principal;
      this.byCertificate = false;
      const writer = new BinaryWriter(128);
      authenticateFinishCommand.encodeResponse(writer, {
        message: Buffer.from(serverFinal, 'utf8'),
        principal,
      });
      return { kind: 'authenticated', payload: writer.finish(), principal, mechanism: this.mechanism };
    } catch (error) {
      return this.failure(error as MemoryStreamerError, session.user);
    }
  }

  private failure(error: MemoryStreamerError, user: string): AuthOutcome {
    const delayMs = this.enabled().limiter.recordFailure(this.address);
    const cause = error.cause === undefined ? '' : ` (${String(error.cause)})`;
    return { kind: 'failed', error, delayMs, user, reason: `${error.message}${cause}` };
  }

  /** User management is for super-users of a broker with authentication on. */
  private superUser(operation: string): BrokerAuthenticator {
    const auth = this.authenticator;
    if (auth === null || !auth.isSuperUser(this.principal))
      throw errorOf(
        'AUTHORIZATION_FAILED',
        `${operation} needs a super-user (authz.super_users)${auth === null ? '; authentication is off on this broker' : this.principal === null ? '; this connection is not authenticated' : `; ${this.principal} is not one`}`,
      );
    return auth;
  }

  private listUsers(): AuthOutcome {
    const auth = this.superUser('listing users');
    const writer = new BinaryWriter(256);
    userListCommand.encodeResponse(writer, {
      iterations: auth.iterations,
      users: auth.users.list().map((u) => ({ name: u.name, mechanisms: [...u.mechanisms] })),
    });
    return { kind: 'answer', payload: writer.finish() };
  }

  private async alterUser(request: ReturnType<typeof userAlterCommand.decodeRequest>): Promise<AuthOutcome> {
    const auth = this.superUser('changing users');
    const credentials: UserCredentials = {};
    for (const c of request.credentials) {
      if (!isScramMechanism(c.mechanism))
        throw errorOf('UNSUPPORTED_SASL_MECHANISM', JSON.stringify(c.mechanism.slice(0, 40)));
      if (c.iterations < auth.iterations)
        throw errorOf(
          'INVALID_CREDENTIAL',
          `${c.mechanism}: ${c.iterations} iterations, this broker asks for at least ${auth.iterations} (auth.scram_iterations)`,
        );
      credentials[c.mechanism] = {
        salt: c.salt,
        iterations: c.iterations,
        storedKey: c.storedKey,
        serverKey: c.serverKey,
      };
    }
    const kind =
      request.action === UserAction.ADD ? 'add' : request.action === UserAction.PASSWD ? 'passwd' : 'remove';
    await auth.users.change(
      kind === 'remove' ? { kind, name: request.name } : { kind, name: request.name, credentials },
    );
    return { kind: 'answer', payload: Buffer.alloc(0) };
  }
}
