// The tenant registry of a cluster (tenants, their principals, the quotas of tenants and
// principals), shared by all its brokers in etcd. Every broker loads it at start and watches it: a
// tenant created, a principal moved or a quota changed through any broker (or offline with
// `memorystreamer tenant … --cluster etcd://…`) applies on every broker as soon as etcd tells it.
//
// Key, under the cluster's prefix /memorystreamer/<cluster name>/ (src/cluster/control-plane/metadata-keys.ts):
//   tenant-registry   the whole registry, the JSON of tenants.json (tenant-store.ts):
//                     { "version": 1, "tenants": { … }, "principals": { … } }
// One key, because a change is checked against the whole registry (a principal belongs to at most
// one tenant): a change reads the key, applies itself (applyTenantChange) and writes the result in
// a transaction that compares the key's mod revision with the one read; when another change got in
// between, it reads again and tries again. etcd's default limit of a value (1.5 MiB) holds some
// thousands of tenants. The registry kept is the newest by revision, so a late event never undoes
// a newer change.

import type { Etcd3, IKeyValue, Namespace } from 'etcd3';
import { errorOf } from '../protocol/error-codes.js';
import { etcdClient } from './etcd-client.js';
import { type EtcdRegistryOptions, etcdCall, loadedOrClosed, WatchedRange } from './etcd-session.js';
import {
  applyTenantChange,
  EMPTY_TENANT_REGISTRY,
  parseTenantRegistry,
  serializeTenantRegistry,
  type TenantBackend,
  type TenantChange,
  type TenantRegistry,
  TenantStore,
} from './tenant-store.js';

const REGISTRY_KEY = 'tenant-registry';

/** How often a change is tried again when other changes keep getting in between. */
const MAX_ATTEMPTS = 20;

export class EtcdTenantBackend implements TenantBackend {
  readonly location: string;
  private readonly client: Etcd3;
  private readonly store: Namespace;
  private readonly range: WatchedRange;
  private readonly listeners = new Set<() => void>();
  private readonly onResync: (reason: string) => void;
  private registry: TenantRegistry = EMPTY_TENANT_REGISTRY;
  /** The etcd revision `registry` is of (0: none read yet). */
  private revision = 0n;
  /** The registry changed since refresh() was last asked. */
  private changedSinceRefresh = false;
  private closed = false;

  private constructor(options: EtcdRegistryOptions, client: Etcd3) {
    this.client = client;
    this.store = client.namespace(options.prefix);
    this.location = `etcd ${options.address.endpoints.join(',')} ${options.prefix}${REGISTRY_KEY}`;
    this.onResync = options.onResync ?? (() => undefined);
    this.range = new WatchedRange(
      this.store,
      { key: REGISTRY_KEY },
      'tenants',
      {
        // A full read replaces what was known, whatever its revision (the key may have been
        // deleted and written again since).
        reset: () => {
          this.registry = EMPTY_TENANT_REGISTRY;
          this.revision = 0n;
          this.changedSinceRefresh = true;
        },
        put: (kv) => this.applyPut(kv),
        delete: (kv) => this.hold(EMPTY_TENANT_REGISTRY, BigInt(kv.mod_revision)),
        changed: () => this.tell(),
      },
      this.onResync,
    );
  }

  /**
   * Connects (retrying an unreachable etcd with backoff up to the connect timeout), loads the
   * registry and starts watching it. CONTROL_PLANE_UNAVAILABLE when etcd does not answer.
   */
  static async open(options: EtcdRegistryOptions): Promise<EtcdTenantBackend> {
    const backend = new EtcdTenantBackend(options, etcdClient(options.address, options.callTimeoutMs));
    return loadedOrClosed(backend, () => backend.range.load(), options.connectTimeoutMs);
  }

  get current(): TenantRegistry {
    return this.registry;
  }

  /** The watch keeps the registry current: true when it changed since last asked. */
  async refresh(): Promise<boolean> {
    const changed = this.changedSinceRefresh;
    this.changedSinceRefresh = false;
    return changed;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async change(change: TenantChange): Promise<TenantRegistry> {
    for (let attempt = 1; ; attempt++) {
      const read = await etcdCall('tenants', () => this.store.get(REGISTRY_KEY).exec());
      const kv = read.kvs[0];
      const registry =
        kv === undefined
          ? EMPTY_TENANT_REGISTRY
          : parseTenantRegistry(this.location, kv.value.toString('utf8'));
      const next = applyTenantChange(registry, change);
      const result = await etcdCall('tenants', () =>
        this.store
          .if(REGISTRY_KEY, 'Mod', '==', kv?.mod_revision ?? 0)
          .then(this.store.put(REGISTRY_KEY).value(serializeTenantRegistry(next)))
          .commit(),
      );
      if (result.succeeded) {
        this.hold(next, BigInt(result.header.revision));
        this.tell();
        return next;
      }
      if (attempt >= MAX_ATTEMPTS)
        throw errorOf(
          'CONTROL_PLANE_UNAVAILABLE',
          `etcd (tenants): the change met ${attempt} other changes of the registry; try again`,
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

  private hold(registry: TenantRegistry, revision: bigint): void {
    if (revision <= this.revision) return;
    this.registry = registry;
    this.revision = revision;
    this.changedSinceRefresh = true;
  }

  private applyPut(kv: IKeyValue): void {
    try {
      this.hold(parseTenantRegistry(this.location, kv.value.toString('utf8')), BigInt(kv.mod_revision));
    } catch (error) {
      // Not written by a broker or the CLI (they check every change): the last good registry holds.
      this.onResync(`${(error as Error).message}; the registry read before stays in force`);
    }
  }

  private tell(): void {
    for (const listener of this.listeners) listener();
  }
}

/** The tenants of a cluster, in etcd (as the CLI opens them offline with --cluster). */
export async function openEtcdTenantStore(options: EtcdRegistryOptions): Promise<TenantStore> {
  return TenantStore.over(await EtcdTenantBackend.open(options));
}
