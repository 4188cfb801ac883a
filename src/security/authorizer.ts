// Authorization of requests: super-users may do everything; anyone else what the access control
// entries allow (acl-matcher.ts). Decisions are cached per principal, so the check on the request
// path is one map lookup; replacing the entries empties every cache at once, so a change applies to
// open connections from their next request. A denial goes to `onDenied` (the audit log's hook)
// before AUTHORIZATION_FAILED naming the operation and the resource is thrown. No I/O.

import type { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';
import {
  ACL_OPERATIONS,
  ACL_RESOURCE_TYPES,
  type AclEntry,
  type AclOperation,
  type AclResource,
  type AclResourceType,
  describeEntry,
  describeResource,
} from './acl.js';
import { AclMatcher } from './acl-matcher.js';

/** What was refused, for an audit log. */
export interface AclDenial {
  readonly principal: string;
  readonly operation: AclOperation;
  readonly resource: AclResource;
  /** The entry that denies it; null when no entry allows it. */
  readonly deniedBy: AclEntry | null;
  /** Where the request came from (`address:port`), when the caller said. */
  readonly source?: string;
}

export interface AuthorizerOptions {
  /** Principals allowed every operation (`authz.super_users`). */
  readonly superUsers?: readonly string[];
  /** Called for every denial, before the request is refused (the audit log records them). */
  readonly onDenied?: (denial: AclDenial) => void;
}

/** Cached decisions a principal may hold before its cache starts again (names are unbounded). */
const MAX_CACHED_PER_PRINCIPAL = 10_000;

/** Slot of an (operation, resource type) pair in a principal's cache: no key string built per check. */
const OPERATION_INDEX = Object.fromEntries(ACL_OPERATIONS.map((op, i) => [op, i])) as Record<
  AclOperation,
  number
>;
const TYPE_INDEX = Object.fromEntries(ACL_RESOURCE_TYPES.map((type, i) => [type, i])) as Record<
  AclResourceType,
  number
>;
const TYPE_COUNT = ACL_RESOURCE_TYPES.length;

/** One principal's cached decisions: per (operation, type) slot, resource name → allowed. */
interface PrincipalCache {
  readonly slots: Array<Map<string, boolean> | undefined>;
  size: number;
}

export class Authorizer {
  private matcher: AclMatcher;
  private entries: readonly AclEntry[];
  private readonly superUsers: ReadonlySet<string>;
  private readonly onDenied: ((denial: AclDenial) => void) | undefined;
  private readonly cache = new Map<string, PrincipalCache>();

  constructor(entries: readonly AclEntry[], options: AuthorizerOptions = {}) {
    this.entries = entries;
    this.matcher = new AclMatcher(entries);
    this.superUsers = new Set(options.superUsers ?? []);
    this.onDenied = options.onDenied;
  }

  /** The entries changed: decide from these from now on (every cached decision is dropped). */
  replace(entries: readonly AclEntry[]): void {
    this.entries = entries;
    this.matcher = new AclMatcher(entries);
    this.cache.clear();
  }

  get acls(): readonly AclEntry[] {
    return this.entries;
  }

  get superUserCount(): number {
    return this.superUsers.size;
  }

  isSuperUser(principal: string): boolean {
    return this.superUsers.has(principal);
  }

  /** Whether `principal` may do `operation` on the resource (cached). */
  allowed(principal: string, operation: AclOperation, type: AclResourceType, name: string): boolean {
    if (this.superUsers.has(principal)) return true;
    let cache = this.cache.get(principal);
    if (cache === undefined) {
      cache = { slots: [], size: 0 };
      this.cache.set(principal, cache);
    }
    const slot = OPERATION_INDEX[operation] * TYPE_COUNT + TYPE_INDEX[type];
    let names = cache.slots[slot];
    if (names === undefined) {
      names = new Map();
      cache.slots[slot] = names;
    }
    const known = names.get(name);
    if (known !== undefined) return known;
    const allowed = this.matcher.decide(principal, operation, { type, name }).allowed;
    if (cache.size >= MAX_CACHED_PER_PRINCIPAL) {
      cache.slots.length = 0;
      cache.size = 0;
      names = new Map();
      cache.slots[slot] = names;
    }
    names.set(name, allowed);
    cache.size++;
    return allowed;
  }

  /** Whether some entry allows `operation` on some resource of `type` (see AclMatcher.allowsSome). */
  allowsSome(principal: string, operation: AclOperation, type: AclResourceType): boolean {
    return this.superUsers.has(principal) || this.matcher.allowsSome(principal, operation, type);
  }

  /**
   * The error refusing `operation` on `resource` to `principal`, after telling `onDenied`:
   * AUTHORIZATION_FAILED naming both, and the entry that denies it if one does.
   */
  denial(
    principal: string,
    operation: AclOperation,
    resource: AclResource,
    source?: string,
  ): MemoryStreamerError {
    const deniedBy = this.matcher.decide(principal, operation, resource).entry;
    this.onDenied?.({
      principal,
      operation,
      resource,
      deniedBy,
      ...(source !== undefined ? { source } : {}),
    });
    const why =
      deniedBy !== null && deniedBy.permission === 'deny'
        ? `denied by the entry "${describeEntry(deniedBy)}"`
        : 'no entry allows it';
    return errorOf(
      'AUTHORIZATION_FAILED',
      `${principal} may not ${operation} ${describeResource(resource.type, resource.name)}: ${why}`,
    );
  }

  /** Throws the denial when `principal` may not do `operation` on the resource. */
  check(principal: string, operation: AclOperation, resource: AclResource): void {
    if (!this.allowed(principal, operation, resource.type, resource.name))
      throw this.denial(principal, operation, resource);
  }
}
