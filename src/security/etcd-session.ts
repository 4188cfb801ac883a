// What the security registries a cluster keeps in etcd (ACLs, tenants) share: the client to etcd,
// an open that retries an unreachable etcd with backoff, and a watched range of keys that is read
// once and then followed from the revision of that read (so no change falls between the two), read
// again from scratch when the watch cannot go on (its revision was compacted away). The users
// (etcd-user-store.ts) are kept the same way.

import type { IKeyValue, Namespace, Watcher } from 'etcd3';
import { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';
import type { EtcdEndpoints } from './etcd-client.js';

export interface EtcdRegistryOptions {
  readonly address: EtcdEndpoints;
  /** The cluster's key prefix, `/memorystreamer/<cluster name>/` (metadata-keys.ts). */
  readonly prefix: string;
  /** The cluster URL as the operator wrote it (for messages: the command that changes the registry). */
  readonly url: string;
  /** Deadline of one etcd request (default 2 s). */
  readonly callTimeoutMs?: number;
  /** How long opening keeps retrying an unreachable etcd, with backoff (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Told when the watch failed and the registry was read again, or a record was ignored (for the log). */
  readonly onResync?: (reason: string) => void;
}

/** Runs one etcd request; transport failures become CONTROL_PLANE_UNAVAILABLE naming `what`. */
export async function etcdCall<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (error instanceof MemoryStreamerError) throw error;
    throw errorOf('CONTROL_PLANE_UNAVAILABLE', `etcd (${what}): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Calls `load` until it succeeds, retrying CONTROL_PLANE_UNAVAILABLE with backoff up to the deadline. */
export async function retryUnavailable(load: () => Promise<void>, connectTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + connectTimeoutMs;
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2000)) {
    try {
      await load();
      return;
    } catch (error) {
      if (!(error instanceof MemoryStreamerError) || error.codeName !== 'CONTROL_PLANE_UNAVAILABLE')
        throw error;
      if (Date.now() + delayMs > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/**
 * `store` once `load` has succeeded (an unreachable etcd retried as `retryUnavailable` does); when
 * it never does, the store is closed again (its client and any watch) and the error thrown.
 */
export async function loadedOrClosed<T extends { close(): Promise<void> }>(
  store: T,
  load: () => Promise<void>,
  connectTimeoutMs = 10_000,
): Promise<T> {
  try {
    await retryUnavailable(load, connectTimeoutMs);
    return store;
  } catch (error) {
    await store.close();
    throw error;
  }
}

/** What a watched range tells its owner. */
export interface WatchedRangeHandlers {
  /** A full read is about to be applied: forget what was known. */
  reset(): void;
  /** A key's value (from the read or the watch); `kv.key` is relative to the namespace. */
  put(kv: IKeyValue): void;
  delete(kv: IKeyValue): void;
  /** After a read or a batch of watch events (one etcd revision): apply them now. */
  changed(): void;
}

/** One key or every key under a prefix of a namespace, read and then watched. */
export class WatchedRange {
  private watcher: Watcher | null = null;
  private closed = false;

  constructor(
    private readonly store: Namespace,
    private readonly range: { readonly key: string } | { readonly prefix: string },
    private readonly what: string,
    private readonly handlers: WatchedRangeHandlers,
    private readonly onResync: (reason: string) => void,
  ) {}

  /** Reads the range, then watches it from the revision after that read. */
  async load(): Promise<void> {
    const response = await etcdCall(this.what, () =>
      'key' in this.range
        ? this.store.get(this.range.key).exec()
        : this.store.getAll().prefix(this.range.prefix).exec(),
    );
    this.handlers.reset();
    for (const kv of response.kvs) this.handlers.put(kv);
    this.handlers.changed();
    await this.watchFrom(BigInt(response.header.revision) + 1n);
  }

  private async watchFrom(revision: bigint): Promise<void> {
    const watcher = await etcdCall(this.what, () => {
      const builder = this.store.watch();
      const ranged = 'key' in this.range ? builder.key(this.range.key) : builder.prefix(this.range.prefix);
      return ranged.startRevision(revision.toString()).create();
    });
    if (this.closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    watcher.on('put', (kv) => this.handlers.put(kv));
    watcher.on('delete', (kv) => this.handlers.delete(kv));
    // Emitted after the put and delete events of the same response (etcd3's Watcher emits those
    // from its own 'data' listener, registered first).
    watcher.on('data', () => this.handlers.changed());
    watcher.on('error', (error: Error) => void this.resync(watcher, error));
  }

  private async resync(failed: Watcher, error: Error): Promise<void> {
    if (this.closed || this.watcher !== failed) return;
    this.watcher = null;
    await failed.cancel().catch(() => undefined);
    this.onResync(error.message);
    for (let delayMs = 100; !this.closed; delayMs = Math.min(delayMs * 2, 2000)) {
      try {
        await this.load();
        return;
      } catch (reason) {
        this.onResync((reason as Error).message);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.cancel().catch(() => undefined);
    this.watcher = null;
  }
}
