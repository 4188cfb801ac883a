// The access control entries of a cluster, shared by all its brokers in etcd. Every broker loads
// them at start and watches them: an entry added or removed through any broker (or offline with
// `memorystreamer acl … --cluster etcd://…`) applies on every broker as soon as etcd tells it, to
// open connections too (the broker's authorizer drops its cached decisions on every change).
//
// Keys, under the cluster's prefix /memorystreamer/<cluster name>/ (src/cluster/control-plane/metadata-keys.ts; the control
// plane ignores keys it does not know):
//   acls/<id>   one entry, JSON as in acls.json: { "principal", "resourceType", "resourceName",
//               "pattern", "operation", "permission" }; <id> is the hex SHA-256 of the entry's
//               fields (aclKey), so the same entry always has the same key and two brokers adding
//               different entries at once never touch the same key.
// A change is one transaction: add puts the entries whose keys are absent (compared: created
// nowhere since they were read), remove deletes the ones present (compared: not changed since
// read); when another change got in between, the entries are read again and the transaction
// retried. The watch starts at the revision of the read that loaded the entries; each entry keeps
// the revision it was last changed at, so a late event never undoes a newer change.

import { createHash } from 'node:crypto';
import type { Etcd3, IKeyValue, Namespace } from 'etcd3';
import { errorOf } from '../protocol/error-codes.js';
import { type AclEntry, aclKey, checkAclEntry } from './acl.js';
import type { AclChange, AclStore } from './acl-store.js';
import { etcdClient } from './etcd-client.js';
import { type EtcdRegistryOptions, etcdCall, loadedOrClosed, WatchedRange } from './etcd-session.js';

const ACLS_PREFIX = 'acls/';

/** How often a change is tried again when other changes keep getting in between. */
const MAX_ATTEMPTS = 20;

/** The key of an entry: the same entry always has the same key. */
export function aclEntryKey(entry: AclEntry): string {
  return `${ACLS_PREFIX}${createHash('sha256').update(aclKey(entry)).digest('hex')}`;
}

interface Known {
  /** null: removed at `revision` (kept so an older put arriving late does not bring it back). */
  readonly entry: AclEntry | null;
  readonly revision: bigint;
}

export class EtcdAclStore implements AclStore {
  readonly location: string;
  readonly addCommand: string;
  private readonly client: Etcd3;
  private readonly store: Namespace;
  private readonly known = new Map<string, Known>();
  private readonly range: WatchedRange;
  private readonly listeners = new Set<() => void>();
  private readonly onResync: (reason: string) => void;
  /** The entries in force, rebuilt after every read, watch batch and change. */
  private entries: readonly AclEntry[] = [];
  private closed = false;

  private constructor(options: EtcdRegistryOptions, client: Etcd3) {
    this.client = client;
    this.store = client.namespace(options.prefix);
    this.location = `etcd ${options.address.endpoints.join(',')} ${options.prefix}${ACLS_PREFIX}`;
    this.addCommand = `memorystreamer acl add --principal User:alice --topic orders --operation write --cluster ${options.url}`;
    this.onResync = options.onResync ?? (() => undefined);
    this.range = new WatchedRange(
      this.store,
      { prefix: ACLS_PREFIX },
      'ACLs',
      {
        reset: () => this.known.clear(),
        put: (kv) => this.applyPut(kv),
        delete: (kv) => this.applyDelete(kv),
        changed: () => this.rebuild(),
      },
      this.onResync,
    );
  }

  /**
   * Connects (retrying an unreachable etcd with backoff up to the connect timeout), loads the
   * entries and starts watching them. CONTROL_PLANE_UNAVAILABLE when etcd does not answer.
   */
  static async open(options: EtcdRegistryOptions): Promise<EtcdAclStore> {
    const acls = new EtcdAclStore(options, etcdClient(options.address, options.callTimeoutMs));
    return loadedOrClosed(acls, () => acls.range.load(), options.connectTimeoutMs);
  }

  list(): readonly AclEntry[] {
    return this.entries;
  }

  /** The watch keeps the entries current: nothing to read again. */
  async refresh(): Promise<boolean> {
    return false;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async change(change: AclChange): Promise<number> {
    const wanted = change.entries.map(checkAclEntry);
    if (wanted.length === 0) throw errorOf('INVALID_ACL', 'no entry given');
    const byKey = new Map(wanted.map((entry) => [aclEntryKey(entry), entry]));
    for (let attempt = 1; ; attempt++) {
      const keys = [...byKey.keys()];
      // Not one read: the transaction below compares every key it changes with what was read here.
      const read = await etcdCall('ACLs', () => Promise.all(keys.map((key) => this.store.get(key).exec())));
      // Per key: its mod revision when present (absent keys compare as revision 0).
      const present = new Map<string, string>();
      read.forEach((response, i) => {
        const kv = response.kvs[0];
        if (kv !== undefined) present.set(keys[i]!, kv.mod_revision);
      });
      const touched = keys.filter((key) => (change.kind === 'add') !== present.has(key));
      if (change.kind === 'remove' && touched.length === 0)
        throw errorOf('ACL_NOT_FOUND', `none of the ${wanted.length} entries given is in ${this.location}`);
      if (touched.length === 0) return 0;
      let txn = this.store.if(touched[0]!, 'Mod', '==', present.get(touched[0]!) ?? 0);
      for (const key of touched.slice(1)) txn = txn.and(key, 'Mod', '==', present.get(key) ?? 0);
      const result = await etcdCall('ACLs', () =>
        txn
          .then(
            ...touched.map((key) =>
              change.kind === 'add'
                ? this.store.put(key).value(JSON.stringify(byKey.get(key)))
                : this.store.delete().key(key),
            ),
          )
          .commit(),
      );
      if (result.succeeded) {
        const revision = BigInt(result.header.revision);
        for (const key of touched) this.record(key, change.kind === 'add' ? byKey.get(key)! : null, revision);
        this.rebuild();
        return touched.length;
      }
      if (attempt >= MAX_ATTEMPTS)
        throw errorOf(
          'CONTROL_PLANE_UNAVAILABLE',
          `etcd (ACLs): the change met ${attempt} other changes of the same entries; try again`,
        );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.range.close();
    this.client.close();
  }

  private record(key: string, entry: AclEntry | null, revision: bigint): void {
    const known = this.known.get(key);
    if (known === undefined || known.revision < revision) this.known.set(key, { entry, revision });
  }

  private applyPut(kv: IKeyValue): void {
    const key = kv.key.toString('utf8');
    let entry: AclEntry | null;
    try {
      entry = checkAclEntry(JSON.parse(kv.value.toString('utf8')) as AclEntry);
      if (aclEntryKey(entry) !== key) throw new Error('its key is not the hash of its fields');
    } catch (error) {
      // A record no broker wrote allows nothing; the other entries stay in force.
      entry = null;
      this.onResync(`ACL ${key} in etcd is not valid, ignored: ${(error as Error).message}`);
    }
    this.record(key, entry, BigInt(kv.mod_revision));
  }

  private applyDelete(kv: IKeyValue): void {
    this.record(kv.key.toString('utf8'), null, BigInt(kv.mod_revision));
  }

  /** The entries in force from what is known, and every listener told. */
  private rebuild(): void {
    const entries: AclEntry[] = [];
    for (const known of this.known.values()) if (known.entry !== null) entries.push(known.entry);
    this.entries = entries;
    for (const listener of this.listeners) listener();
  }
}
