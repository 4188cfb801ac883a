// The users of a cluster, shared by all its brokers in etcd. Every broker loads them at start and
// watches them: a user added, changed or removed through any broker (or offline with
// `memorystreamer user … --cluster etcd://…`) applies on every broker as soon as etcd tells it,
// so a new user authenticates everywhere at once and a removed user's password stops working
// everywhere. Passwords are never stored: only salted, hashed credentials.
//
// Keys, under the cluster's prefix /memorystreamer/<cluster name>/ (src/cluster/control-plane/
// metadata-keys.ts; the control plane ignores keys it does not know):
//   users/<name>         the user's credentials, JSON (encodeCredentials in user-store.ts):
//                        { "<mechanism>": { "salt", "iterations", "storedKey", "serverKey" } }
//   users-decoy-secret   base64 of 32 random bytes, written once (create-if-absent) by whoever
//                        comes first: every broker shows an unknown user the same salt
// Changes are transactions: add creates the key only if absent (USER_ALREADY_EXISTS otherwise),
// passwd and remove act only if the key exists (USER_NOT_FOUND otherwise). The watch starts at
// the revision of the read that loaded the users, so no change falls between the two; each entry
// keeps the revision it was last changed at, so a late event never undoes a newer change.

import { randomBytes } from 'node:crypto';
import type { Etcd3, IKeyValue, Namespace } from 'etcd3';
import { errorOf } from '../protocol/error-codes.js';
import { decoySalt } from './credentials.js';
import { type EtcdEndpoints, etcdClient } from './etcd-client.js';
import { etcdCall, loadedOrClosed, WatchedRange } from './etcd-session.js';
import type { ScramCredential, ScramMechanism } from './scram.js';
import {
  checkChange,
  decodeCredentials,
  encodeCredentials,
  summarize,
  type UserChange,
  type UserCredentials,
  type UserStore,
  type UserSummary,
} from './user-store.js';

const USERS_PREFIX = 'users/';
const DECOY_KEY = 'users-decoy-secret';

/** Where etcd is (a parsed cluster URL: cluster-url.ts gives these fields). */
export interface EtcdUserStoreOptions {
  readonly address: EtcdEndpoints;
  /** The cluster's key prefix, `/memorystreamer/<cluster name>/` (metadata-keys.ts). */
  readonly prefix: string;
  /** The cluster URL as the operator wrote it (for messages: the command that adds a user). */
  readonly url: string;
  /** Deadline of one etcd request (default 2 s). */
  readonly callTimeoutMs?: number;
  /** How long opening keeps retrying an unreachable etcd, with backoff (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Told when the watch failed and the users were read again (for the broker's log). */
  readonly onResync?: (reason: string) => void;
}

interface Entry {
  /** null: removed at `revision` (kept so an older put arriving late does not bring it back). */
  readonly credentials: UserCredentials | null;
  readonly revision: bigint;
}

export class EtcdUserStore implements UserStore {
  readonly path: string;
  readonly addCommand: string;
  private readonly client: Etcd3;
  private readonly store: Namespace;
  private readonly entries = new Map<string, Entry>();
  private decoySecret: Buffer = Buffer.alloc(0);
  private readonly range: WatchedRange;
  private closed = false;
  private readonly onResync: (reason: string) => void;

  private constructor(options: EtcdUserStoreOptions, client: Etcd3) {
    this.client = client;
    this.store = client.namespace(options.prefix);
    this.path = `etcd ${options.address.endpoints.join(',')} ${options.prefix}${USERS_PREFIX}`;
    this.addCommand = `memorystreamer user add NAME --password-stdin --cluster ${options.url}`;
    this.onResync = options.onResync ?? (() => undefined);
    // A watch that cannot go on (its revision was compacted away) reads every user again; the decoy
    // secret is written once and never changes.
    this.range = new WatchedRange(
      this.store,
      { prefix: USERS_PREFIX },
      'users',
      {
        reset: () => this.entries.clear(),
        put: (kv) => this.applyPut(kv),
        delete: (kv) => this.applyDelete(kv),
        changed: () => undefined,
      },
      this.onResync,
    );
  }

  /**
   * Connects (retrying an unreachable etcd with backoff up to the connect timeout), loads the
   * users and starts watching them. CONTROL_PLANE_UNAVAILABLE when etcd does not answer.
   */
  static async open(options: EtcdUserStoreOptions): Promise<EtcdUserStore> {
    const users = new EtcdUserStore(options, etcdClient(options.address, options.callTimeoutMs));
    return loadedOrClosed(users, () => users.load(), options.connectTimeoutMs);
  }

  /** Reads the decoy secret (writing it if first) and every user, then watches from that revision. */
  private async load(): Promise<void> {
    const proposed = randomBytes(32).toString('base64');
    const decoy = await etcdCall('users', () =>
      this.store
        .if(DECOY_KEY, 'Create', '==', 0)
        .then(this.store.put(DECOY_KEY).value(proposed))
        .else(this.store.get(DECOY_KEY))
        .commit(),
    );
    const stored = decoy.succeeded
      ? proposed
      : decoy.responses[0]?.response_range?.kvs[0]?.value.toString('utf8');
    if (stored === undefined) throw errorOf('INVALID_CLUSTER_METADATA', `${DECOY_KEY}: vanished while read`);
    this.decoySecret = Buffer.from(stored, 'base64');
    await this.range.load();
  }

  private nameOf(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(USERS_PREFIX.length);
  }

  private newer(name: string, revision: bigint): boolean {
    const known = this.entries.get(name);
    return known === undefined || known.revision < revision;
  }

  private applyPut(kv: IKeyValue): void {
    const name = this.nameOf(kv);
    const revision = BigInt(kv.mod_revision);
    if (!this.newer(name, revision)) return;
    let credentials: UserCredentials | null;
    try {
      credentials = decodeCredentials(JSON.parse(kv.value.toString('utf8')));
    } catch (error) {
      // A record no broker wrote cannot authenticate anyone; the other users stay usable.
      credentials = null;
      this.onResync(`user ${name} in etcd is not valid, ignored: ${(error as Error).message}`);
    }
    this.entries.set(name, { credentials, revision });
  }

  private applyDelete(kv: IKeyValue): void {
    const name = this.nameOf(kv);
    const revision = BigInt(kv.mod_revision);
    if (this.newer(name, revision)) this.entries.set(name, { credentials: null, revision });
  }

  private current(): Map<string, UserCredentials> {
    const users = new Map<string, UserCredentials>();
    for (const [name, entry] of this.entries)
      if (entry.credentials !== null) users.set(name, entry.credentials);
    return users;
  }

  /** The watch keeps the users current: nothing to read again. */
  async refresh(): Promise<boolean> {
    return false;
  }

  get size(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.credentials !== null) count++;
    return count;
  }

  has(name: string): boolean {
    return (this.entries.get(name)?.credentials ?? null) !== null;
  }

  credential(name: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.entries.get(name)?.credentials?.[mechanism];
  }

  decoySalt(mechanism: ScramMechanism, name: string): Buffer {
    return decoySalt(this.decoySecret, mechanism, name);
  }

  list(): UserSummary[] {
    return summarize(this.current());
  }

  /** One transaction in etcd; this broker holds the result at once, the others when their watch tells them. */
  async change(change: UserChange): Promise<void> {
    checkChange(change);
    const key = `${USERS_PREFIX}${change.name}`;
    const value =
      change.kind === 'remove' ? '' : JSON.stringify(encodeCredentials({ ...change.credentials }));
    const result = await etcdCall('users', () => {
      const txn =
        change.kind === 'add' ? this.store.if(key, 'Create', '==', 0) : this.store.if(key, 'Create', '>', 0);
      return txn
        .then(change.kind === 'remove' ? this.store.delete().key(key) : this.store.put(key).value(value))
        .commit();
    });
    if (!result.succeeded)
      throw errorOf(change.kind === 'add' ? 'USER_ALREADY_EXISTS' : 'USER_NOT_FOUND', change.name);
    const revision = BigInt(result.header.revision);
    if (this.newer(change.name, revision))
      this.entries.set(change.name, {
        credentials: change.kind === 'remove' ? null : { ...change.credentials },
        revision,
      });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.range.close();
    this.client.close();
  }
}
