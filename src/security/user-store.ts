// The users of a broker and their SCRAM credentials. `UserStore` is what the broker asks of them;
// a broker alone keeps them in one file of its data directory (FileUserStore, below), the brokers
// of a cluster share them in etcd (etcd-user-store.ts).
//
// The file store: users kept in one file of the data directory. Read
// by the broker (and again when the file changes, so users added offline apply without a restart)
// and written by `memorystreamer user` offline or by the broker for a change over the wire. Every
// write re-reads the file first (read, change, write), so offline and broker changes do not undo
// each other. Passwords are never stored: only salted, hashed credentials.
//
// Layout of <dataDir>/users.json (mode 0600), written to users.json.<pid>.tmp, fsynced, renamed
// over the old file, then the directory fsynced:
//   { "version": 1,
//     "decoySecret": base64 (32 random bytes: the salt shown for unknown users, credentials.ts),
//     "users": { "<name>": { "<mechanism>": { "salt": base64, "iterations": n,
//                                              "storedKey": base64, "serverKey": base64 } } } }

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { checkCredential, checkUsername, decoySalt } from './credentials.js';
import { fileStamp, replaceFileDurably } from './durable-file.js';
import { isScramMechanism, type ScramCredential, type ScramMechanism } from './scram.js';

export const USERS_FILE = 'users.json';

export type UserCredentials = Partial<Record<ScramMechanism, ScramCredential>>;

export interface UserSummary {
  readonly name: string;
  readonly mechanisms: ReadonlyArray<{ mechanism: ScramMechanism; iterations: number }>;
}

interface Snapshot {
  readonly users: ReadonlyMap<string, UserCredentials>;
  readonly decoySecret: Buffer;
  /** mtime, size and inode of the file read (null: no file); a change means read it again. */
  readonly stamp: string | null;
}

function fileProblem(path: string, detail: string) {
  return errorOf('INVALID_CONFIG', `users file ${path}: ${detail}`);
}

function parse(path: string, text: string): Omit<Snapshot, 'stamp'> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fileProblem(path, `not JSON (${(error as Error).message})`);
  }
  const root = json as { version?: unknown; decoySecret?: unknown; users?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== 1)
    throw fileProblem(path, 'expected {"version": 1, ...}');
  if (typeof root.decoySecret !== 'string' || root.users === null || typeof root.users !== 'object')
    throw fileProblem(path, 'expected "decoySecret" and "users"');
  const users = new Map<string, UserCredentials>();
  for (const [name, entry] of Object.entries(root.users as Record<string, unknown>)) {
    try {
      users.set(name, decodeCredentials(entry));
    } catch (error) {
      throw fileProblem(path, `user ${name}: ${(error as Error).message}`);
    }
  }
  return { users, decoySecret: Buffer.from(root.decoySecret, 'base64') };
}

/**
 * One user's credentials as stored (in the users file and in etcd):
 * { "<mechanism>": { "salt": base64, "iterations": n, "storedKey": base64, "serverKey": base64 } }
 */
export function encodeCredentials(credentials: UserCredentials): Record<string, unknown> {
  const stored: Record<string, unknown> = {};
  for (const [mechanism, c] of Object.entries(credentials)) {
    stored[mechanism] = {
      salt: c.salt.toString('base64'),
      iterations: c.iterations,
      storedKey: c.storedKey.toString('base64'),
      serverKey: c.serverKey.toString('base64'),
    };
  }
  return stored;
}

/** The reverse of encodeCredentials, each credential checked (an Error saying what is wrong). */
export function decodeCredentials(stored: unknown): UserCredentials {
  const credentials: UserCredentials = {};
  for (const [mechanism, raw] of Object.entries((stored ?? {}) as Record<string, unknown>)) {
    if (!isScramMechanism(mechanism)) throw new Error(`unknown mechanism ${mechanism}`);
    const c = (raw ?? {}) as Record<string, unknown>;
    const credential: ScramCredential = {
      salt: Buffer.from(String(c.salt), 'base64'),
      iterations: Number(c.iterations),
      storedKey: Buffer.from(String(c.storedKey), 'base64'),
      serverKey: Buffer.from(String(c.serverKey), 'base64'),
    };
    checkCredential(mechanism, credential);
    credentials[mechanism] = credential;
  }
  return credentials;
}

/** Checks a change before it is applied anywhere: the name, and the credentials of add/passwd. */
export function checkChange(change: UserChange): void {
  checkUsername(change.name);
  if (change.kind === 'remove') return;
  const mechanisms = Object.entries(change.credentials) as Array<[ScramMechanism, ScramCredential]>;
  if (mechanisms.length === 0) throw errorOf('INVALID_CREDENTIAL', 'no credential given');
  for (const [mechanism, credential] of mechanisms) checkCredential(mechanism, credential);
}

/** The users as `list()` shows them: sorted by name, mechanisms and iterations only. */
export function summarize(users: ReadonlyMap<string, UserCredentials>): UserSummary[] {
  return [...users]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, credentials]) => ({
      name,
      mechanisms: (Object.entries(credentials) as Array<[ScramMechanism, ScramCredential]>).map(
        ([mechanism, c]) => ({ mechanism, iterations: c.iterations }),
      ),
    }));
}

function serialize(snapshot: Omit<Snapshot, 'stamp'>): string {
  const users: Record<string, Record<string, unknown>> = {};
  for (const [name, credentials] of [...snapshot.users].sort(([a], [b]) => (a < b ? -1 : 1)))
    users[name] = encodeCredentials(credentials);
  return `${JSON.stringify({ version: 1, decoySecret: snapshot.decoySecret.toString('base64'), users }, null, 2)}\n`;
}

export type UserChange =
  /** A new user; USER_ALREADY_EXISTS if the name is taken. */
  | { kind: 'add'; name: string; credentials: UserCredentials }
  /** New credentials of an existing user (USER_NOT_FOUND otherwise); mechanisms not given are dropped. */
  | { kind: 'passwd'; name: string; credentials: UserCredentials }
  | { kind: 'remove'; name: string };

/** The users a broker authenticates against, wherever they are kept. */
export interface UserStore {
  /** Where the users are kept, for messages: a file, or the etcd key prefix of the cluster. */
  readonly path: string;
  /** The command that adds a first user to this store, for the error of a broker with none. */
  readonly addCommand: string;
  /** Number of users. */
  readonly size: number;
  /** Catches up with changes made elsewhere (true if there were some); before each authentication. */
  refresh(): Promise<boolean>;
  has(name: string): boolean;
  credential(name: string, mechanism: ScramMechanism): ScramCredential | undefined;
  /** The salt shown for a user that does not exist (the same at every ask, see credentials.ts). */
  decoySalt(mechanism: ScramMechanism, name: string): Buffer;
  list(): UserSummary[];
  /** Applies a change durably; the store holds the result when it resolves. */
  change(change: UserChange): Promise<void>;
  /** Lets go of what the store holds open (nothing for a file). */
  close(): Promise<void>;
}

/** The users file of a data directory: the store of a broker without a cluster. */
export const UserStore = {
  open: (dataDir: string): Promise<UserStore> => FileUserStore.open(dataDir),
} as const;

export class FileUserStore implements UserStore {
  readonly path: string;
  private snapshot: Snapshot;
  /** Writes (and the reads before them) one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  readonly addCommand: string;

  private constructor(dataDir: string, snapshot: Snapshot) {
    this.path = join(dataDir, USERS_FILE);
    this.addCommand = `memorystreamer user add NAME --password-stdin --data-dir ${dataDir}`;
    this.snapshot = snapshot;
  }

  /** Opens the users of a data directory (none yet when the file does not exist). */
  static async open(dataDir: string): Promise<FileUserStore> {
    return new FileUserStore(dataDir, await FileUserStore.read(join(dataDir, USERS_FILE)));
  }

  async close(): Promise<void> {}

  private static async read(path: string): Promise<Snapshot> {
    const stamp = await fileStamp(path, (detail) => fileProblem(path, detail));
    if (stamp === null) return { users: new Map(), decoySecret: randomBytes(32), stamp: null };
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw fileProblem(path, (error as Error).message);
    }
    return { ...parse(path, text), stamp };
  }

  /** Reads the file again if it changed since it was read (users changed offline). */
  async refresh(): Promise<boolean> {
    const stamp = await fileStamp(this.path, (detail) => fileProblem(this.path, detail));
    if (stamp === this.snapshot.stamp) return false;
    this.snapshot = await FileUserStore.read(this.path);
    return true;
  }

  get size(): number {
    return this.snapshot.users.size;
  }

  has(name: string): boolean {
    return this.snapshot.users.has(name);
  }

  credential(name: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.snapshot.users.get(name)?.[mechanism];
  }

  decoySalt(mechanism: ScramMechanism, name: string): Buffer {
    return decoySalt(this.snapshot.decoySecret, mechanism, name);
  }

  list(): UserSummary[] {
    return summarize(this.snapshot.users);
  }

  /** Applies a change to the file as it is now, durably; the store then holds the result. */
  change(change: UserChange): Promise<void> {
    const run = this.queue.then(() => this.apply(change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(change: UserChange): Promise<void> {
    checkChange(change);
    const current = await FileUserStore.read(this.path);
    const users = new Map(current.users);
    const exists = users.has(change.name);
    if (change.kind === 'add' && exists) throw errorOf('USER_ALREADY_EXISTS', change.name);
    if (change.kind !== 'add' && !exists) throw errorOf('USER_NOT_FOUND', change.name);
    if (change.kind === 'remove') users.delete(change.name);
    else users.set(change.name, { ...change.credentials });
    const next = { users, decoySecret: current.decoySecret };
    await replaceFileDurably(this.path, serialize(next));
    this.snapshot = {
      ...next,
      stamp: await fileStamp(this.path, (detail) => fileProblem(this.path, detail)),
    };
  }
}
