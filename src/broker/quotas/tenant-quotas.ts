// Tenants and quotas on a broker with authentication on: which namespace each principal's requests
// use (tenant-names.ts), and the quotas of tenants and principals (tenant-store.ts holds them):
//   produce / fetch bytes per second, requests per second: the connection is held (reading paused,
//     a THROTTLE frame sent) for as long as the rate runs ahead; nothing is refused.
//   connections: a connection over the quota is refused (CONNECTION_QUOTA_EXCEEDED) and closed.
//   storage bytes: a produce to a tenant whose topics hold more is refused (TENANT_STORAGE_QUOTA_EXCEEDED).
//   topics, partitions: a create or a partition increase past them is refused (TENANT_TOPIC_QUOTA_EXCEEDED).
// Storage, topic and partition quotas are a tenant's (the topics are its namespace's); rates and
// connections are counted per tenant and per principal, and the first limit reached holds.
// The registry file is read again every `refreshMs` when it changed: quotas and memberships apply to
// open connections at once (each request looks its principal up again).

import { Counter, Gauge, type Registry } from 'prom-client';
import { isMemoryStreamerError } from '../../common/errors.js';
import { BinaryReader } from '../../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../../protocol/codec/binary-writer.js';
import type { CreateTopicRequest } from '../../protocol/commands/data-types.js';
import { tenantAlterCommand, tenantListCommand } from '../../protocol/commands/tenant-commands.js';
import { errorOf } from '../../protocol/error-codes.js';
import { Opcode } from '../../protocol/opcodes.js';
import { TenantNamespace } from '../../security/tenant-names.js';
import {
  type Quota,
  type QuotaKey,
  serializeTenantRegistry,
  type TenantChange,
  TenantStore,
} from '../../security/tenant-store.js';
import type { BrokerCore } from '../broker-core.js';
import type { PushSubscription } from '../partitions/push-subscription.js';
import { RateLimiter } from './rate-limiter.js';

/** How often the registry file is checked for changes and tenants' storage is summed. */
export const DEFAULT_REFRESH_MS = 500;
/**
 * A rate limiter whose principal (or tenant) has no open connection is dropped once it has owed
 * nothing for this long (checked at each refresh): principals that come and go leave nothing behind.
 */
export const DEFAULT_LIMITER_IDLE_MS = 60_000;
/**
 * Limiters kept at most: past it, every limiter of a principal or tenant without an open
 * connection that owes nothing is dropped at once (those of connected ones are bounded by the
 * connections).
 */
export const DEFAULT_MAX_LIMITERS = 10_000;

export type RateKind = 'produce' | 'fetch' | 'requests';
const RATE_QUOTA: Record<RateKind, QuotaKey> = {
  produce: 'produceBytesPerSec',
  fetch: 'fetchBytesPerSec',
  requests: 'requestsPerSec',
};

export interface TenantQuotasOptions {
  readonly core: BrokerCore;
  /** Where tenants.json is. */
  readonly dataDir: string;
  /** Super-users see and name everything as stored, and no quota holds them. */
  readonly isSuperUser: (principal: string) => boolean;
  readonly refreshMs?: number;
  /** See DEFAULT_LIMITER_IDLE_MS and DEFAULT_MAX_LIMITERS. */
  readonly limiterIdleMs?: number;
  readonly maxLimiters?: number;
}

/** A rate limiter and whose it is: a principal's own, or a tenant's shared one. */
interface LimiterEntry {
  readonly limiter: RateLimiter;
  readonly principal: string | null;
  readonly tenant: string | null;
}

/** What the broker keeps per principal between reloads. */
interface PrincipalView {
  readonly namespace: TenantNamespace | null;
  readonly tenant: string | null;
  readonly tenantQuota: Quota;
  readonly ownQuota: Quota;
}

export class TenantQuotas {
  readonly store: TenantStore;
  private readonly core: BrokerCore;
  private readonly isSuperUser: (principal: string) => boolean;
  private views = new Map<string, PrincipalView>();
  /** Open connections counted against quotas, by their principal. */
  private readonly connections = new Map<object, string>();
  /** `<kind>:<tenant|principal scope>` → its limiter (replaced when the quota changes). */
  private readonly limiters = new Map<string, LimiterEntry>();
  private readonly limiterIdleMs: number;
  /** Subscriptions whose delivery a fetch quota holds, and the timer that resumes each. */
  private readonly pushHolds = new Map<PushSubscription, NodeJS.Timeout>();
  private readonly maxLimiters: number;
  /** Bytes in each tenant's topics at the last refresh, plus bytes produced since. */
  private storage = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private refreshing: Promise<void> | null = null;
  private readonly bytesIn: Counter<'tenant'>;
  private readonly bytesOut: Counter<'tenant'>;
  private readonly throttleSeconds: Counter<'tenant'>;

  private constructor(store: TenantStore, options: TenantQuotasOptions, registry: Registry) {
    this.store = store;
    this.core = options.core;
    this.isSuperUser = options.isSuperUser;
    this.limiterIdleMs = options.limiterIdleMs ?? DEFAULT_LIMITER_IDLE_MS;
    this.maxLimiters = options.maxLimiters ?? DEFAULT_MAX_LIMITERS;
    const registers = [registry];
    this.bytesIn = new Counter({
      name: 'memorystreamer_tenant_bytes_in_total',
      help: 'bytes produced by the principals of a tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.bytesOut = new Counter({
      name: 'memorystreamer_tenant_bytes_out_total',
      help: 'bytes fetched by the principals of a tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.throttleSeconds = new Counter({
      name: 'memorystreamer_tenant_throttle_seconds_total',
      help: "time a tenant's connections were held by its quotas or its principals' quotas",
      labelNames: ['tenant'],
      registers,
    });
    const tenantStorage = () => this.storage;
    new Gauge({
      name: 'memorystreamer_tenant_storage_bytes',
      help: "bytes held by a tenant's topics (all partitions)",
      labelNames: ['tenant'],
      registers,
      collect() {
        this.reset();
        for (const [tenant, bytes] of tenantStorage()) this.set({ tenant }, bytes);
      },
    });
    this.sumStorage();
    this.timer = setInterval(() => void this.refresh(), options.refreshMs ?? DEFAULT_REFRESH_MS);
    this.timer.unref();
  }

  /** Opens the tenants of the broker's data directory (none when the file does not exist). */
  static async open(options: TenantQuotasOptions): Promise<TenantQuotas> {
    const store = await TenantStore.open(options.dataDir);
    return new TenantQuotas(store, options, options.core.metrics.registry);
  }

  /** Reads the registry again when its file changed and sums each tenant's storage. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        if (await this.store.refresh()) this.views = new Map();
      } catch {
        // A file being edited by hand may not parse for a moment: the last good registry holds.
      }
      this.sumStorage();
      this.evictLimiters(Date.now(), this.limiterIdleMs);
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private sumStorage(): void {
    const storage = new Map<string, number>();
    for (const name of this.store.current.tenants.keys()) storage.set(name, 0);
    // No tenant, nothing to sum: a broker with authentication and no tenants does not walk its partitions.
    if (storage.size === 0) {
      this.storage = storage;
      return;
    }
    const namespace = new TenantNamespace(null, this.store.current.tenants.keys());
    for (const p of this.core.state.partitions()) {
      const owner = namespace.ownerOf(p.topic);
      if (owner !== null) storage.set(owner, (storage.get(owner) ?? 0) + p.sizeBytes);
    }
    this.storage = storage;
  }

  private view(principal: string | null): PrincipalView | null {
    if (principal === null || this.isSuperUser(principal)) return null;
    let view = this.views.get(principal);
    if (view === undefined) {
      const { tenants, principalQuotas } = this.store.current;
      let tenant: string | null = null;
      for (const entry of tenants.values()) if (entry.principals.includes(principal)) tenant = entry.name;
      view = {
        namespace: new TenantNamespace(tenant, tenants.keys()),
        tenant,
        tenantQuota: tenant === null ? {} : tenants.get(tenant)!.quota,
        ownQuota: principalQuotas.get(principal) ?? {},
      };
      this.views.set(principal, view);
    }
    return view;
  }

  /** The namespace of a principal's requests; null: names as stored (super-users, no principal). */
  namespaceOf(principal: string | null): TenantNamespace | null {
    return this.view(principal)?.namespace ?? null;
  }

  /** Counts an authenticated connection; CONNECTION_QUOTA_EXCEEDED when its tenant or principal is full. */
  admitConnection(connection: object, principal: string | null): void {
    if (this.connections.has(connection)) return;
    const view = this.view(principal);
    if (view !== null) {
      let own = 0;
      let tenant = 0;
      for (const other of this.connections.values()) {
        if (other === principal) own++;
        if (view.tenant !== null && this.view(other)?.tenant === view.tenant) tenant++;
      }
      const ownLimit = view.ownQuota.connections;
      const tenantLimit = view.tenantQuota.connections;
      if (ownLimit !== undefined && own >= ownLimit)
        throw errorOf('CONNECTION_QUOTA_EXCEEDED', `${principal} has ${own} of ${ownLimit} connections`);
      if (tenantLimit !== undefined && tenant >= tenantLimit)
        throw errorOf(
          'CONNECTION_QUOTA_EXCEEDED',
          `tenant ${view.tenant} has ${tenant} of ${tenantLimit} connections`,
        );
    }
    this.connections.set(connection, principal ?? '');
  }

  releaseConnection(connection: object): void {
    this.connections.delete(connection);
  }

  /**
   * Refuses a request (names already as stored) that would take its tenant past a storage, topic
   * or partition quota.
   */
  checkRequest(principal: string | null, command: string, request: unknown): void {
    const view = this.view(principal);
    if (view === null || view.tenant === null) return;
    const quota = view.tenantQuota;
    if (command === 'produce' && quota.storageBytes !== undefined) {
      const used = this.storage.get(view.tenant) ?? 0;
      if (used >= quota.storageBytes)
        throw errorOf(
          'TENANT_STORAGE_QUOTA_EXCEEDED',
          `tenant ${view.tenant} holds ${used} bytes, its quota is ${quota.storageBytes}`,
        );
    }
    if (command !== 'createTopic' && command !== 'alterTopic') return;
    if (quota.topics === undefined && quota.partitions === undefined) return;
    const { namespace } = view;
    // In a cluster the counts are the cluster's (its metadata, which every broker holds), not
    // those of the topics that have a copy here.
    const all =
      this.core.clusterMetadata?.topics().map((t) => ({ name: t.name, partitions: t.partitions ?? 1 })) ??
      this.core
        .localTopicNames()
        .map((name) => ({ name, partitions: this.core.localTopic(name)?.partitions ?? 0 }));
    let topics = 0;
    let partitions = 0;
    for (const topic of all) {
      if (!namespace!.visible(topic.name)) continue;
      topics++;
      partitions += topic.partitions;
    }
    const input = request as CreateTopicRequest;
    const existing = all.find((t) => t.name === input.name);
    if (command === 'createTopic' && existing === undefined) {
      topics++;
      partitions += this.core.viewOfNewTopic(input).partitions;
    } else if (command === 'alterTopic' && existing !== undefined && input.partitions !== undefined)
      partitions += Math.max(0, input.partitions - existing.partitions);
    if (quota.topics !== undefined && topics > quota.topics)
      throw errorOf('TENANT_TOPIC_QUOTA_EXCEEDED', `tenant ${view.tenant} may hold ${quota.topics} topics`);
    if (quota.partitions !== undefined && partitions > quota.partitions)
      throw errorOf(
        'TENANT_TOPIC_QUOTA_EXCEEDED',
        `tenant ${view.tenant} may hold ${quota.partitions} partitions; this would make ${partitions}`,
      );
  }

  /**
   * Takes `amount` (bytes, or 1 request) from the principal's and its tenant's rate quotas; returns
   * how long (ms) its connection should be held. Produced and fetched bytes count in the metrics.
   */
  charge(principal: string | null, kind: RateKind, amount: number, now = Date.now()): number {
    const view = this.view(principal);
    if (view === null) return 0;
    if (view.tenant !== null) {
      if (kind === 'produce') {
        this.bytesIn.inc({ tenant: view.tenant }, amount);
        this.storage.set(view.tenant, (this.storage.get(view.tenant) ?? 0) + amount);
      } else if (kind === 'fetch') this.bytesOut.inc({ tenant: view.tenant }, amount);
    }
    const key = RATE_QUOTA[kind];
    let delay = 0;
    const own = view.ownQuota[key];
    if (own !== undefined)
      delay = this.limiter(`${kind}:${principal}`, own, principal, null, now).take(amount, now);
    const shared = view.tenantQuota[key];
    if (shared !== undefined && view.tenant !== null)
      delay = Math.max(
        delay,
        this.limiter(`${kind}:tenant:${view.tenant}`, shared, null, view.tenant, now).take(amount, now),
      );
    if (delay > 0 && view.tenant !== null) this.throttleSeconds.inc({ tenant: view.tenant }, delay / 1000);
    return delay;
  }

  private limiter(
    key: string,
    rate: number,
    principal: string | null,
    tenant: string | null,
    now: number,
  ): RateLimiter {
    const entry = this.limiters.get(key);
    if (entry !== undefined && entry.limiter.ratePerSec === rate) return entry.limiter;
    if (entry === undefined && this.limiters.size >= this.maxLimiters) this.evictLimiters(now, 0);
    const limiter = new RateLimiter(rate);
    this.limiters.set(key, { limiter, principal, tenant });
    return limiter;
  }

  /**
   * A push of a subscription (SUBSCRIBE): `bytes` of batches delivered to the principal's
   * connection, charged to its fetch quota like a fetch answer (and counted in the tenant's bytes
   * out). When the quota runs ahead, the subscription's delivery is held for as long: it resumes
   * from the log afterwards, so nothing is lost, only slowed to the rate.
   */
  chargePush(principal: string | null, subscription: PushSubscription, bytes: number): void {
    const delay = this.charge(principal, 'fetch', bytes);
    if (delay <= 0) return;
    const held = this.pushHolds.get(subscription);
    if (held !== undefined) clearTimeout(held);
    subscription.pauseDelivery();
    const timer = setTimeout(() => {
      this.pushHolds.delete(subscription);
      if (!subscription.closed) subscription.resumeDelivery();
    }, delay);
    timer.unref();
    this.pushHolds.set(subscription, timer);
  }

  /** Rate limiters held now (for tests and the eviction's bound). */
  get limiterCount(): number {
    return this.limiters.size;
  }

  /** Principals whose lookups are held now (for tests). */
  get viewCount(): number {
    return this.views.size;
  }

  /**
   * Drops the limiters of principals and tenants without an open connection that have owed nothing
   * for `idleMs`: they would let the next request through at once anyway.
   */
  private evictLimiters(now: number, idleMs: number): void {
    if (this.limiters.size === 0) return;
    const principals = new Set(this.connections.values());
    const tenants = new Set<string>();
    for (const principal of principals) {
      const tenant = principal === '' ? null : this.view(principal)?.tenant;
      if (tenant != null) tenants.add(tenant);
    }
    // What was looked up for principals gone is looked up again when they come back.
    for (const principal of this.views.keys()) if (!principals.has(principal)) this.views.delete(principal);
    for (const [key, entry] of this.limiters) {
      const connected =
        entry.tenant !== null ? tenants.has(entry.tenant) : principals.has(entry.principal ?? '');
      if (!connected && entry.limiter.idle(now, idleMs)) this.limiters.delete(key);
    }
  }

  /** TENANT_LIST and TENANT_ALTER, for super-users: the answer's payload. */
  async admin(principal: string | null, opcode: number, payload: Buffer): Promise<Buffer> {
    if (principal === null || !this.isSuperUser(principal))
      throw errorOf(
        'AUTHORIZATION_FAILED',
        `managing tenants needs a super-user (authz.super_users)${principal === null ? '' : `; ${principal} is not one`}`,
      );
    const reader = new BinaryReader(payload);
    const writer = new BinaryWriter(256);
    if (opcode === Opcode.TENANT_LIST) {
      reader.end();
      await this.refresh();
      tenantListCommand.encodeResponse(writer, {
        registry: JSON.parse(serializeTenantRegistry(this.store.current)),
      });
    } else {
      const { change } = tenantAlterCommand.decodeRequest(reader);
      reader.end();
      await this.store.change(change as TenantChange).catch((error: unknown) => {
        throw isMemoryStreamerError(error) ? error : errorOf('INVALID_TENANT', (error as Error).message);
      });
      this.views = new Map();
      this.sumStorage();
    }
    return writer.finish();
  }

  close(): void {
    clearInterval(this.timer);
    for (const timer of this.pushHolds.values()) clearTimeout(timer);
    this.pushHolds.clear();
  }
}

/** The tenant quotas of a broker core's listener (set by the node that starts both). */
const byCore = new WeakMap<BrokerCore, TenantQuotas>();

export function attachTenantQuotas(core: BrokerCore, quotas: TenantQuotas): void {
  byCore.set(core, quotas);
}

/** Null when the broker has no tenant quotas (authentication off): requests go through as they are. */
export function tenantQuotasOf(core: BrokerCore): TenantQuotas | null {
  return byCore.get(core) ?? null;
}
