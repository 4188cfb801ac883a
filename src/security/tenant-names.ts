// The one boundary between the names a tenant's principal uses and the names inside the broker.
// A connection whose principal belongs to tenant `acme` has its requests rewritten before the
// broker core sees them (topic `orders` → `acme.orders`, group `billing` → `acme.billing`) and its
// responses rewritten back, lists filtered to the tenant, and error messages stripped of the prefix.
// Nothing else in the broker knows about tenants.
//
// Why a crafted name cannot reach another tenant: every name from a tenant's principal gets its
// tenant's prefix, whatever it holds; `bravo` asking for `acme.orders` reaches `bravo.acme.orders`.
// Tenant names hold no `.` (tenant-store.ts), so `<tenant>.` is never a prefix of another tenant's
// `<other>.`. A principal without a tenant (and not a super-user) uses names as they are, except
// names starting with `<a registered tenant>.`, which are refused and left out of its lists: the
// global namespace never reaches into a tenant's. Super-users see every name as stored.
//
// Requests that are not about one tenant's topics or groups (cluster configuration, reassignment,
// leader elections, drains, replica verification, broker-to-broker requests) are refused for a
// tenant's principals with AUTHORIZATION_FAILED.

import { MemoryStreamerError } from '../common/errors.js';
import { errorOf } from '../protocol/error-codes.js';

/** The broker's consumer-group offsets topic (broker-core.ts OFFSETS_TOPIC). */
const GROUP_OFFSETS_TOPIC = '__consumer_offsets';

/** Between a tenant's name and the name its principal uses. Topic and group names may hold `.`, tenant names may not. */
export const TENANT_SEPARATOR = '.';
/** A topic or group name inside the broker is at most this long (topic-config.ts, group-placement.ts). */
const MAX_STORED_NAME = 200;

/** Commands a tenant's principal may send (by the client API's command names). */
const TENANT_COMMANDS: ReadonlySet<string> = new Set([
  'ping',
  'createTopic',
  'alterTopic',
  'deleteTopic',
  'listTopics',
  'describeTopic',
  'metadata',
  'produce',
  'fetch',
  'listOffsets',
  'initProducerId',
  'readStream',
  'subscribe',
  'unsubscribe',
  'joinGroup',
  'heartbeat',
  'leaveGroup',
  'commitOffsets',
  'fetchOffsets',
  'listGroups',
  'describeGroup',
  'findCoordinator',
]);

type Named = Record<string, unknown>;
type Kind = 'topic' | 'group';

/**
 * How one principal's names map to the broker's. `tenant` null: a principal without a tenant, whose
 * names are the broker's own but may not start with a tenant's prefix.
 */
export class TenantNamespace {
  readonly tenant: string | null;
  private readonly prefix: string;
  private readonly reserved: ReadonlySet<string>;

  /** `tenants`: every registered tenant's name (reserved prefixes for a principal without a tenant). */
  constructor(tenant: string | null, tenants: Iterable<string>) {
    this.tenant = tenant;
    this.prefix = tenant === null ? '' : `${tenant}${TENANT_SEPARATOR}`;
    this.reserved = new Set(tenants);
  }

  /** The tenant a stored name belongs to, or null (global). */
  ownerOf(stored: string): string | null {
    const at = stored.indexOf(TENANT_SEPARATOR);
    if (at <= 0) return null;
    const owner = stored.slice(0, at);
    return this.reserved.has(owner) ? owner : null;
  }

  /** Whether this principal may see the stored name. */
  visible(stored: string): boolean {
    if (this.tenant === null && stored === GROUP_OFFSETS_TOPIC && this.reserved.size > 0) return false;
    return this.tenant === null ? this.ownerOf(stored) === null : stored.startsWith(this.prefix);
  }

  /** The stored name of a name this principal gave. */
  inward(name: unknown, kind: Kind): string {
    if (typeof name !== 'string' || name.length === 0)
      throw errorOf(
        kind === 'topic' ? 'INVALID_TOPIC_NAME' : 'INVALID_GROUP_ID',
        `a ${kind} name is a non-empty string`,
      );
    if (this.tenant === null) {
      // The group offsets topic holds every tenant's group and topic names: outside the tenants'
      // namespaces, as the rest of theirs is, once there are tenants (super-users have no namespace).
      if (kind === 'topic' && name === GROUP_OFFSETS_TOPIC && this.reserved.size > 0)
        throw errorOf(
          'AUTHORIZATION_FAILED',
          `${GROUP_OFFSETS_TOPIC} holds the tenants' consumer groups: only a super-user reads it`,
        );
      const owner = this.ownerOf(name);
      if (owner !== null)
        throw errorOf(
          kind === 'topic' ? 'INVALID_TOPIC_NAME' : 'INVALID_GROUP_ID',
          `${JSON.stringify(name)}: names starting with "${owner}${TENANT_SEPARATOR}" belong to a tenant`,
        );
      return name;
    }
    const room = MAX_STORED_NAME - this.prefix.length;
    if (name.length > room)
      throw errorOf(
        kind === 'topic' ? 'INVALID_TOPIC_NAME' : 'INVALID_GROUP_ID',
        `"${name.slice(0, 40)}…" is ${name.length} characters; at most ${room} in this tenant`,
      );
    return this.prefix + name;
  }

  /** The name this principal sees for a stored name (visible ones only). */
  outward(stored: string): string {
    return this.tenant !== null && stored.startsWith(this.prefix) ? stored.slice(this.prefix.length) : stored;
  }

  /** Whether a tenant's principal may send this command at all. */
  allows(command: string): boolean {
    return this.tenant === null || TENANT_COMMANDS.has(command);
  }

  /** Rewrites a decoded request in place (the command name is the client API's). */
  rewriteRequest(command: string, request: Named): void {
    if (!this.allows(command))
      throw errorOf(
        'AUTHORIZATION_FAILED',
        `${command} is not open to principals of a tenant (tenant ${this.tenant}); a super-user may send it`,
      );
    const topic = (field: string, on: Named = request) => {
      on[field] = this.inward(on[field], 'topic');
    };
    switch (command) {
      case 'createTopic':
      case 'alterTopic':
      case 'deleteTopic':
      case 'describeTopic':
        topic('name');
        return;
      case 'metadata':
        if (Array.isArray(request.topics))
          request.topics = request.topics.map((name: unknown) => this.inward(name, 'topic'));
        return;
      case 'produce':
      case 'fetch':
      case 'listOffsets':
      case 'readStream':
      case 'subscribe':
        topic('topic');
        return;
      case 'joinGroup':
        request.groupId = this.inward(request.groupId, 'group');
        request.topics = (request.topics as unknown[]).map((name) => this.inward(name, 'topic'));
        return;
      case 'commitOffsets':
        request.groupId = this.inward(request.groupId, 'group');
        for (const offset of request.offsets as Named[]) topic('topic', offset);
        return;
      case 'heartbeat':
      case 'leaveGroup':
      case 'fetchOffsets':
      case 'describeGroup':
      case 'findCoordinator':
        request.groupId = this.inward(request.groupId, 'group');
        return;
      case 'verifyPartition':
        // Names a topic, but reports on replicas: an operator's request, never a tenant-scoped one
        // (a tenant's principal is refused above); a principal of the global namespace names the
        // topic as stored, and the ACLs decide.
        return;
    }
  }

  /**
   * A response as this principal sees it: names back to its own, lists filtered to what it may
   * see. A new object: the broker's answers may share objects with its own state, which must keep
   * the stored names.
   */
  rewriteResponse(command: string, response: Named): Named {
    /** A copy of `on` with `field` named as this principal sees it. */
    const out = (on: unknown, field: string): Named => {
      const entry = on as Named;
      return typeof entry[field] === 'string'
        ? { ...entry, [field]: this.outward(entry[field] as string) }
        : entry;
    };
    /** The entries whose `field` this principal may see, renamed as it sees them. */
    const seen = (list: unknown, field: string): Named[] =>
      (list as Named[])
        .filter((entry) => this.visible(String(entry[field])))
        .map((entry) => out(entry, field));
    const topics = (list: unknown) => seen(list, 'topic');
    switch (command) {
      case 'createTopic':
      case 'alterTopic':
        return out(response, 'name');
      case 'describeTopic':
        return { ...response, topic: out(response.topic, 'name') };
      case 'listTopics':
      case 'metadata':
        return { ...response, topics: seen(response.topics, 'name') };
      case 'joinGroup':
        return { ...response, assignment: topics(response.assignment) };
      case 'fetchOffsets':
        return { ...response, offsets: topics(response.offsets) };
      case 'listGroups':
        return { ...response, groups: seen(response.groups, 'groupId') };
      case 'describeGroup':
        return {
          ...response,
          group: out(response.group, 'groupId'),
          members: (response.members as Named[]).map((m) => ({ ...m, assignment: topics(m.assignment) })),
          lag: topics(response.lag),
        };
      default:
        return response;
    }
  }

  /** An error as this principal sees it: the tenant's prefix taken out of its message. */
  rewriteError(error: unknown): unknown {
    if (this.tenant === null || !(error instanceof MemoryStreamerError)) return error;
    const pattern = new RegExp(
      `(^|[^A-Za-z0-9._-])${this.tenant.replace(/-/g, '\\-')}\\${TENANT_SEPARATOR}`,
      'g',
    );
    const message = error.message.replace(pattern, '$1');
    if (message === error.message) return error;
    const { code, codeName: name, retriable } = error;
    return new MemoryStreamerError({ code, name, retriable, message });
  }
}
