// Authorization on a broker: the entries of its AclStore, the Authorizer deciding from them, the
// check of every request (request-permissions.ts says what each needs), the filtering of answers
// that list topics and groups, and the ACL_LIST / ACL_ALTER requests. Changes over the wire apply at
// once; changes to the store made elsewhere (`memorystreamer acl --data-dir` beside a running
// broker) are picked up within a second of the next request. The connection passes payloads in and
// sends what comes out; nothing here knows of sockets. A store that learns of changes by itself (a
// cluster's entries in etcd, watched) tells this at once, and the change applies to the next request
// of every open connection.

import type { MemoryStreamerError } from '../common/errors.js';
import { BinaryReader } from '../protocol/codec/binary-reader.js';
import { BinaryWriter } from '../protocol/codec/binary-writer.js';
import { AclAction, aclAlterCommand, aclListCommand } from '../protocol/commands/acl-commands.js';
import type { CommandName, RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import { errorOf } from '../protocol/error-codes.js';
import { Opcode } from '../protocol/opcodes.js';
import { ANONYMOUS_PRINCIPAL } from './acl.js';
import { type AclStore, FileAclStore } from './acl-store.js';
import { type AclDenial, Authorizer } from './authorizer.js';
import {
  BROKER_TO_BROKER,
  filterResponse,
  OPCODE_PERMISSIONS,
  type Requirement,
  requirementsOf,
} from './request-permissions.js';

export interface BrokerAuthorizationOptions {
  /** Principals allowed every operation (`authz.super_users`). */
  readonly superUsers?: readonly string[];
  /** Every denial, before the request is refused (the audit log's hook). */
  readonly onDenied?: (denial: AclDenial) => void;
  /** The store of the entries; default `<dataDir>/acls.json`. */
  readonly store?: AclStore;
  /** Opens the store of the entries (a cluster's, in etcd); used when `store` is not given. */
  readonly openStore?: (onResync?: (reason: string) => void) => Promise<AclStore>;
  /**
   * The principals of the cluster's brokers (cluster.broker_principals): allowed every operation,
   * as they replicate every topic and forward administrative requests to the controller. They do
   * not count as super-users for the start's fail-closed check.
   */
  readonly brokerPrincipals?: readonly string[];
  /** The store could not be read again (the entries in force stay as they were). */
  readonly onRefreshError?: (error: unknown) => void;
}

const ACL_LIST_NEEDS = OPCODE_PERMISSIONS.ACL_LIST as readonly Requirement[];
const ACL_ALTER_NEEDS = OPCODE_PERMISSIONS.ACL_ALTER as readonly Requirement[];

/** How often at most the store is asked whether its entries changed elsewhere. */
const REFRESH_INTERVAL_MS = 1000;

export class BrokerAuthorization {
  readonly authorizer: Authorizer;
  readonly store: AclStore;
  private readonly onRefreshError: ((error: unknown) => void) | undefined;
  /** A re-read of the store is scheduled (see refreshIfDue). */
  private refreshScheduled = false;
  private readonly stopListening: () => void;

  private constructor(store: AclStore, options: BrokerAuthorizationOptions) {
    this.store = store;
    this.onRefreshError = options.onRefreshError;
    this.authorizer = new Authorizer(store.list(), {
      superUsers: [...(options.superUsers ?? []), ...(options.brokerPrincipals ?? [])],
      ...(options.onDenied !== undefined ? { onDenied: options.onDenied } : {}),
    });
    this.stopListening =
      store.onChange?.(() => this.authorizer.replace(this.store.list())) ?? (() => undefined);
  }

  /**
   * Opens the entries. Fails closed: with no super-user and no entry, every request would be
   * refused and nobody could add one over the wire, so the broker does not start (INVALID_CONFIG
   * saying how to fix it).
   */
  static async open(dataDir: string, options: BrokerAuthorizationOptions = {}): Promise<BrokerAuthorization> {
    const store = options.store ?? (await (options.openStore ?? (() => FileAclStore.open(dataDir)))());
    if ((options.superUsers ?? []).length === 0 && store.list().length === 0) {
      await store.close();
      throw errorOf(
        'INVALID_CONFIG',
        `authz.enabled = true but there is no super-user (authz.super_users) and ${store.location} holds no ACL, so every request would be refused; set authz.super_users = ["User:admin"] or add an ACL first: ${store.addCommand}`,
      );
    }
    return new BrokerAuthorization(store, options);
  }

  /** Stops following the store and closes it (its etcd connection, in a cluster). */
  async close(): Promise<void> {
    this.stopListening();
    await this.store.close();
  }

  /** The principal requests are checked as: the authenticated one, else User:ANONYMOUS. */
  static principalOf(authenticated: string | null): string {
    return authenticated ?? ANONYMOUS_PRINCIPAL;
  }

  /** The refusal of a request of `name` to `principal`, or null when it is allowed. */
  checkRequest<K extends CommandName>(
    principal: string,
    name: K,
    request: RequestOf<K>,
    source?: string,
  ): MemoryStreamerError | null {
    this.refreshIfDue();
    // The hot requests need one topic operation: checked without building their requirements.
    if (name === 'produce' || name === 'fetch') {
      const topic = (request as RequestOf<'produce'>).topic;
      const operation = name === 'produce' ? 'write' : 'read';
      if (this.authorizer.allowed(principal, operation, 'topic', topic)) return null;
      return this.authorizer.denial(principal, operation, { type: 'topic', name: topic }, source);
    }
    return this.check(principal, requirementsOf(name, request), source);
  }

  /** The refusal of a broker-to-broker request (replication, anti-entropy), or null. */
  checkBrokerRequest(principal: string, source?: string): MemoryStreamerError | null {
    this.refreshIfDue();
    return this.check(principal, BROKER_TO_BROKER, source);
  }

  /** The first requirement not met, as the error to answer with; null when all are. */
  check(
    principal: string,
    requirements: readonly Requirement[],
    source?: string,
  ): MemoryStreamerError | null {
    const authorizer = this.authorizer;
    for (const need of requirements) {
      if (authorizer.allowed(principal, need.operation, need.resource.type, need.resource.name)) continue;
      const or = need.or;
      if (or !== undefined) {
        if ('anyOfType' in or) {
          if (authorizer.allowsSome(principal, or.operation, or.anyOfType)) continue;
        } else if (authorizer.allowed(principal, or.operation, or.resource.type, or.resource.name)) continue;
      }
      return authorizer.denial(principal, need.operation, need.resource, source);
    }
    return null;
  }

  /** An answer listing topics or groups, with only those `principal` may describe. */
  filter<K extends CommandName>(principal: string, name: K, response: ResponseOf<K>): ResponseOf<K> {
    if (this.authorizer.isSuperUser(principal)) return response;
    return filterResponse(name, response, (type, n) =>
      this.authorizer.allowed(principal, 'describe', type, n),
    );
  }

  /** ACL_LIST (describe on the cluster) or ACL_ALTER (alter on the cluster): the answer's payload. */
  async handleAclRequest(principal: string, opcode: number, payload: Buffer): Promise<Buffer> {
    const reader = new BinaryReader(payload);
    const writer = new BinaryWriter(256);
    if (opcode === Opcode.ACL_LIST) {
      aclListCommand.decodeRequest(reader);
      reader.end();
      const refused = this.check(principal, ACL_LIST_NEEDS);
      if (refused !== null) throw refused;
      await this.refresh();
      aclListCommand.encodeResponse(writer, { entries: [...this.store.list()] });
      return writer.finish();
    }
    const request = aclAlterCommand.decodeRequest(reader);
    reader.end();
    const refused = this.check(principal, ACL_ALTER_NEEDS);
    if (refused !== null) throw refused;
    const changed = await this.store.change({
      kind: request.action === AclAction.ADD ? 'add' : 'remove',
      entries: request.entries,
    });
    // Applies at once: every cached decision goes, open connections see the change next request.
    this.authorizer.replace(this.store.list());
    aclAlterCommand.encodeResponse(writer, { changed });
    return writer.finish();
  }

  /** Reads the store again now, and applies what changed. */
  async refresh(): Promise<void> {
    if (await this.store.refresh()) this.authorizer.replace(this.store.list());
  }

  /**
   * While requests arrive, the store is read again once a second (a timer armed by a request, not
   * a clock read per request: one boolean on the request path); an idle broker arms none.
   */
  private refreshIfDue(): void {
    if (this.refreshScheduled) return;
    this.refreshScheduled = true;
    setTimeout(() => {
      this.refresh()
        .catch((error: unknown) => this.onRefreshError?.(error))
        .finally(() => {
          this.refreshScheduled = false;
        });
    }, REFRESH_INTERVAL_MS).unref();
  }
}

/** Opcodes answered by BrokerAuthorization.handleAclRequest. */
export function isAclOpcode(opcode: number): boolean {
  return opcode === Opcode.ACL_LIST || opcode === Opcode.ACL_ALTER;
}

export function authorizationDisabled(): MemoryStreamerError {
  return errorOf(
    'AUTHORIZATION_DISABLED',
    'ACLs are managed on a broker with authz.enabled = true; change them offline with memorystreamer acl … --data-dir DIR (a cluster: --cluster etcd://…)',
  );
}
