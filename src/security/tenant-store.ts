// The tenants of a broker, their principals and the quotas of tenants and principals, kept in one
// file of the data directory (a cluster keeps the same registry in etcd: etcd-tenant-store.ts). Read by the broker (and again when the file changes, so changes made
// offline apply to open connections without a restart) and written by `memorystreamer tenant`
// offline or by the broker for a change over the wire. Every write re-reads the file first (read,
// change, write), so offline and broker changes do not undo each other.
//
// Layout of <dataDir>/tenants.json (mode 0600), written to tenants.json.<pid>.tmp, fsynced, renamed
// over the old file, then the directory fsynced:
//   { "version": 1,
//     "tenants": { "<tenant>": { "principals": ["User:alice", ...], "quota": Quota } },
//     "principals": { "User:bob": { "quota": Quota } } }
// Quota: any of produceBytesPerSec, fetchBytesPerSec, connections, requestsPerSec, storageBytes,
// topics, partitions (non-negative integers; a key left out is no limit).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { fileStamp, replaceFileDurably } from './durable-file.js';

export const TENANTS_FILE = 'tenants.json';

export const QUOTA_KEYS = [
  'produceBytesPerSec',
  'fetchBytesPerSec',
  'connections',
  'requestsPerSec',
  'storageBytes',
  'topics',
  'partitions',
] as const;
export type QuotaKey = (typeof QUOTA_KEYS)[number];
export type Quota = Partial<Record<QuotaKey, number>>;

export interface TenantEntry {
  readonly name: string;
  readonly principals: readonly string[];
  readonly quota: Quota;
}

export interface TenantRegistry {
  readonly tenants: ReadonlyMap<string, TenantEntry>;
  /** Quotas of single principals (with or without a tenant). */
  readonly principalQuotas: ReadonlyMap<string, Quota>;
}

/**
 * A tenant name is the prefix of its topics' and groups' names inside the broker
 * (`<tenant>.<name>`), so it never holds the separator `.` and never starts with `_` (names
 * starting with `__` belong to the broker).
 */
const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PRINCIPAL = /^User:[A-Za-z0-9._@-]+$/;

export function checkTenantName(name: string): string {
  if (typeof name !== 'string' || !TENANT_NAME.test(name))
    throw errorOf(
      'INVALID_TENANT',
      `tenant ${JSON.stringify(String(name).slice(0, 70))}: 1-63 of [a-z0-9_-], starting with a letter or digit`,
    );
  return name;
}

export function checkTenantPrincipal(principal: string): string {
  if (typeof principal !== 'string' || !PRINCIPAL.test(principal))
    throw errorOf(
      'INVALID_TENANT',
      `principal ${JSON.stringify(String(principal).slice(0, 70))}: expected User:<name>`,
    );
  return principal;
}

export function checkQuota(quota: Record<string, unknown>, where: string): Quota {
  const out: Quota = {};
  for (const [key, value] of Object.entries(quota)) {
    if (!(QUOTA_KEYS as readonly string[]).includes(key))
      throw errorOf(
        'INVALID_TENANT',
        `${where}: unknown quota ${JSON.stringify(key)} (${QUOTA_KEYS.join(', ')})`,
      );
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      throw errorOf('INVALID_TENANT', `${where}: quota ${key} must be a non-negative integer`);
    out[key as QuotaKey] = value;
  }
  return out;
}

function fileProblem(path: string, detail: string) {
  return errorOf('INVALID_CONFIG', `tenants file ${path}: ${detail}`);
}

export function parseTenantRegistry(path: string, text: string): TenantRegistry {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fileProblem(path, `not JSON (${(error as Error).message})`);
  }
  const root = json as { version?: unknown; tenants?: unknown; principals?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== 1)
    throw fileProblem(path, 'expected {"version": 1, ...}');
  const tenants = new Map<string, TenantEntry>();
  const principalQuotas = new Map<string, Quota>();
  const member = new Map<string, string>();
  try {
    for (const [name, raw] of Object.entries((root.tenants ?? {}) as Record<string, unknown>)) {
      checkTenantName(name);
      const entry = (raw ?? {}) as { principals?: unknown; quota?: unknown };
      const principals = Array.isArray(entry.principals) ? entry.principals.map(String) : [];
      for (const principal of principals) {
        checkTenantPrincipal(principal);
        const other = member.get(principal);
        if (other !== undefined)
          throw errorOf('INVALID_TENANT', `${principal} is in tenants ${other} and ${name}`);
        member.set(principal, name);
      }
      const quota = checkQuota((entry.quota ?? {}) as Record<string, unknown>, `tenant ${name}`);
      tenants.set(name, { name, principals, quota });
    }
    for (const [principal, raw] of Object.entries((root.principals ?? {}) as Record<string, unknown>)) {
      checkTenantPrincipal(principal);
      const quota = ((raw ?? {}) as { quota?: unknown }).quota ?? {};
      principalQuotas.set(principal, checkQuota(quota as Record<string, unknown>, principal));
    }
  } catch (error) {
    throw fileProblem(path, (error as Error).message);
  }
  return { tenants, principalQuotas };
}

export function serializeTenantRegistry(registry: TenantRegistry): string {
  const byName = <T>(map: ReadonlyMap<string, T>) => [...map].sort(([a], [b]) => (a < b ? -1 : 1));
  const tenants: Record<string, unknown> = {};
  for (const [name, entry] of byName(registry.tenants))
    tenants[name] = { principals: [...entry.principals].sort(), quota: entry.quota };
  const principals: Record<string, unknown> = {};
  for (const [principal, quota] of byName(registry.principalQuotas)) principals[principal] = { quota };
  return `${JSON.stringify({ version: 1, tenants, principals }, null, 2)}\n`;
}

export type TenantChange =
  /** A new tenant; TENANT_ALREADY_EXISTS if the name is taken. */
  | { kind: 'add'; tenant: string }
  /** Removes the tenant and its memberships (its topics stay in storage, seen by super-users). */
  | { kind: 'remove'; tenant: string }
  /** Puts a principal in a tenant (INVALID_TENANT when it is in another one). */
  | { kind: 'add-principal'; tenant: string; principal: string }
  | { kind: 'remove-principal'; tenant: string; principal: string }
  /**
   * Sets quotas of a tenant (`tenant`) or of a principal (`principal`): keys given with a number
   * are set, keys given with null are removed, others stay.
   */
  | {
      kind: 'set-quota';
      tenant?: string;
      principal?: string;
      quota: Partial<Record<QuotaKey, number | null>>;
    };

/** The registry after a change (pure: throws a coded error when the change does not apply). */
export function applyTenantChange(registry: TenantRegistry, change: TenantChange): TenantRegistry {
  const tenants = new Map(registry.tenants);
  const principalQuotas = new Map(registry.principalQuotas);
  const existing = (name: string): TenantEntry => {
    const entry = tenants.get(checkTenantName(name));
    if (entry === undefined) throw errorOf('TENANT_NOT_FOUND', name);
    return entry;
  };
  switch (change.kind) {
    case 'add':
      if (tenants.has(checkTenantName(change.tenant))) throw errorOf('TENANT_ALREADY_EXISTS', change.tenant);
      tenants.set(change.tenant, { name: change.tenant, principals: [], quota: {} });
      break;
    case 'remove':
      existing(change.tenant);
      tenants.delete(change.tenant);
      break;
    case 'add-principal': {
      const entry = existing(change.tenant);
      checkTenantPrincipal(change.principal);
      for (const other of tenants.values())
        if (other.name !== entry.name && other.principals.includes(change.principal))
          throw errorOf(
            'INVALID_TENANT',
            `${change.principal} is in tenant ${other.name}; a principal belongs to at most one tenant (remove it there first)`,
          );
      if (!entry.principals.includes(change.principal))
        tenants.set(entry.name, { ...entry, principals: [...entry.principals, change.principal] });
      break;
    }
    case 'remove-principal': {
      const entry = existing(change.tenant);
      if (!entry.principals.includes(change.principal))
        throw errorOf('INVALID_TENANT', `${change.principal} is not in tenant ${entry.name}`);
      tenants.set(entry.name, {
        ...entry,
        principals: entry.principals.filter((p) => p !== change.principal),
      });
      break;
    }
    case 'set-quota': {
      if ((change.tenant === undefined) === (change.principal === undefined))
        throw errorOf('INVALID_TENANT', 'set a quota of exactly one tenant or one principal');
      const current =
        change.tenant !== undefined
          ? existing(change.tenant).quota
          : (principalQuotas.get(checkTenantPrincipal(change.principal!)) ?? {});
      const next: Record<string, unknown> = { ...current };
      if (change.quota === null || typeof change.quota !== 'object')
        throw errorOf('INVALID_TENANT', 'a quota change is an object of quota keys');
      for (const [key, value] of Object.entries(change.quota)) {
        if (value === null) delete next[key];
        else next[key] = value;
      }
      const quota = checkQuota(next, change.tenant ?? change.principal!);
      if (change.tenant !== undefined) tenants.set(change.tenant, { ...existing(change.tenant), quota });
      else if (Object.keys(quota).length === 0) principalQuotas.delete(change.principal!);
      else principalQuotas.set(change.principal!, quota);
      break;
    }
    default:
      throw errorOf(
        'INVALID_TENANT',
        `unknown change ${JSON.stringify((change as { kind?: unknown }).kind)}`,
      );
  }
  return { tenants, principalQuotas };
}

export const EMPTY_TENANT_REGISTRY: TenantRegistry = { tenants: new Map(), principalQuotas: new Map() };

/** Where a registry is kept: the data directory's file (below), or a cluster's etcd (etcd-tenant-store.ts). */
export interface TenantBackend {
  /** Where the registry is kept, for messages. */
  readonly location: string;
  /** The registry as last read or written. */
  readonly current: TenantRegistry;
  /** Reads the registry again if it changed elsewhere (or learnt of a change since asked); true when it did. */
  refresh(): Promise<boolean>;
  /** Applies a change to the registry as it is now, durably; the backend then holds the result. */
  change(change: TenantChange): Promise<TenantRegistry>;
  /** Calls `listener` when the registry changed elsewhere, if the backend learns of that by itself. */
  onChange?(listener: () => void): () => void;
  close(): Promise<void>;
}

/** The registry in <dataDir>/tenants.json. */
class FileTenantBackend implements TenantBackend {
  readonly location: string;
  private registry: TenantRegistry;
  /** mtime, size and inode of the file read (null: no file); a change means read it again. */
  private stamp: string | null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, registry: TenantRegistry, stamp: string | null) {
    this.location = path;
    this.registry = registry;
    this.stamp = stamp;
  }

  static async open(dataDir: string): Promise<FileTenantBackend> {
    const path = join(dataDir, TENANTS_FILE);
    const { registry, stamp } = await FileTenantBackend.read(path);
    return new FileTenantBackend(path, registry, stamp);
  }

  private static async read(path: string): Promise<{ registry: TenantRegistry; stamp: string | null }> {
    const stamp = await fileStamp(path, (detail) => fileProblem(path, detail));
    if (stamp === null) return { registry: EMPTY_TENANT_REGISTRY, stamp };
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw fileProblem(path, (error as Error).message);
    }
    return { registry: parseTenantRegistry(path, text), stamp };
  }

  get current(): TenantRegistry {
    return this.registry;
  }

  async refresh(): Promise<boolean> {
    const stamp = await fileStamp(this.location, (detail) => fileProblem(this.location, detail));
    if (stamp === this.stamp) return false;
    const read = await FileTenantBackend.read(this.location);
    this.registry = read.registry;
    this.stamp = read.stamp;
    return true;
  }

  change(change: TenantChange): Promise<TenantRegistry> {
    const run = this.queue.then(async () => {
      const { registry } = await FileTenantBackend.read(this.location);
      const next = applyTenantChange(registry, change);
      await replaceFileDurably(this.location, serializeTenantRegistry(next));
      this.registry = next;
      this.stamp = await fileStamp(this.location, (detail) => fileProblem(this.location, detail));
      return next;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {}
}

/**
 * The tenants of a broker: its data directory's file, or, for a broker of a cluster, the registry
 * the cluster shares in etcd (useBackend: the node switches to it before it serves).
 */
export class TenantStore {
  private backend: TenantBackend;
  /** The backend was switched since refresh() was last asked: the registry changed. */
  private switched = false;
  private readonly listeners = new Set<() => void>();
  private stopForwarding: () => void = () => undefined;

  private constructor(backend: TenantBackend) {
    this.backend = backend;
    this.forward();
  }

  /** Opens the tenants of a data directory (none yet when the file does not exist). */
  static async open(dataDir: string): Promise<TenantStore> {
    return new TenantStore(await FileTenantBackend.open(dataDir));
  }

  /** A store over an opened backend (a cluster's registry in etcd). */
  static over(backend: TenantBackend): TenantStore {
    return new TenantStore(backend);
  }

  /** Where the registry is kept, for messages. */
  get path(): string {
    return this.backend.location;
  }

  get current(): TenantRegistry {
    return this.backend.current;
  }

  /** Reads the registry again if it changed since it was read; true when it did. */
  async refresh(): Promise<boolean> {
    if (this.switched) {
      this.switched = false;
      await this.backend.refresh();
      return true;
    }
    return this.backend.refresh();
  }

  /** Applies a change to the registry as it is now, durably; the store then holds the result. */
  change(change: TenantChange): Promise<TenantRegistry> {
    return this.backend.change(change);
  }

  /** Calls `listener` as soon as the registry changed elsewhere (when the backend learns of it by itself). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Keeps the registry in `backend` from now on (the one before is closed). */
  async useBackend(backend: TenantBackend): Promise<void> {
    const before = this.backend;
    this.stopForwarding();
    this.backend = backend;
    this.switched = true;
    this.forward();
    await before.close();
    for (const listener of this.listeners) listener();
  }

  async close(): Promise<void> {
    this.stopForwarding();
    this.listeners.clear();
    await this.backend.close();
  }

  private forward(): void {
    this.stopForwarding =
      this.backend.onChange?.(() => {
        for (const listener of this.listeners) listener();
      }) ?? (() => undefined);
  }
}
