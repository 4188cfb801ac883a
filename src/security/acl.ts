// The access control entry: who (a principal, or `*` for all), what (a resource type and a name,
// literal or prefix), which operation, allowed or denied. Checking and describing entries; no I/O
// (the client uses this module too). The wire layout is in src/protocol/commands/acl-commands.ts.

import {
  type AclEntry,
  type AclOperation,
  type AclPatternType,
  type AclPermission,
  type AclResourceType,
  OPERATION_CODES,
  PATTERN_CODES,
  PERMISSION_CODES,
  RESOURCE_TYPE_CODES,
} from '../protocol/commands/acl-commands.js';
import { errorOf } from '../protocol/error-codes.js';

export type { AclEntry, AclOperation, AclPatternType, AclPermission, AclResourceType };
export { OPERATION_CODES as ACL_OPERATIONS, RESOURCE_TYPE_CODES as ACL_RESOURCE_TYPES };

/** The one cluster resource: entries on the cluster name it. */
export const CLUSTER_RESOURCE = 'cluster';
/** Every principal (in an entry's principal field). */
export const ANY_PRINCIPAL = '*';
/**
 * The principal of a connection that did not authenticate, on a broker with authentication off
 * (as Kafka does): with authorization on, it gets what entries for `User:ANONYMOUS` or `*` allow.
 */
export const ANONYMOUS_PRINCIPAL = 'User:ANONYMOUS';

/** A resource a request touches. */
export interface AclResource {
  readonly type: AclResourceType;
  readonly name: string;
}

const PRINCIPAL = /^User:[A-Za-z0-9._@-]+$/;
const MAX_NAME = 1024;

function invalid(entry: Partial<AclEntry>, detail: string) {
  return errorOf('INVALID_ACL', `${detail} (${describeEntry(entry)})`);
}

/** Checks an entry (INVALID_ACL saying what is wrong); returns it with only its own fields. */
export function checkAclEntry(entry: AclEntry): AclEntry {
  if (entry.principal !== ANY_PRINCIPAL && !PRINCIPAL.test(entry.principal))
    throw invalid(entry, `principal ${JSON.stringify(entry.principal)}: expected User:<name> or *`);
  if (!(RESOURCE_TYPE_CODES as readonly string[]).includes(entry.resourceType))
    throw invalid(
      entry,
      `resource type ${JSON.stringify(entry.resourceType)}: one of ${RESOURCE_TYPE_CODES.join(', ')}`,
    );
  if (!(PATTERN_CODES as readonly string[]).includes(entry.pattern))
    throw invalid(entry, `pattern ${JSON.stringify(entry.pattern)}: literal or prefix`);
  if (!(OPERATION_CODES as readonly string[]).includes(entry.operation))
    throw invalid(
      entry,
      `operation ${JSON.stringify(entry.operation)}: one of ${OPERATION_CODES.join(', ')}`,
    );
  if (!(PERMISSION_CODES as readonly string[]).includes(entry.permission))
    throw invalid(entry, `permission ${JSON.stringify(entry.permission)}: allow or deny`);
  if (
    typeof entry.resourceName !== 'string' ||
    entry.resourceName === '' ||
    entry.resourceName.length > MAX_NAME
  )
    throw invalid(entry, `resource name: 1 to ${MAX_NAME} characters`);
  if (
    entry.resourceType === 'cluster' &&
    (entry.resourceName !== CLUSTER_RESOURCE || entry.pattern !== 'literal')
  )
    throw invalid(entry, `the cluster resource is named "${CLUSTER_RESOURCE}" (literal)`);
  if (entry.pattern === 'prefix' && entry.resourceName === '*')
    throw invalid(entry, 'a prefix of "*" is not a wildcard: use the literal name "*"');
  return {
    principal: entry.principal,
    resourceType: entry.resourceType,
    resourceName: entry.resourceName,
    pattern: entry.pattern,
    operation: entry.operation,
    permission: entry.permission,
  };
}

/** Two entries are the same when every field is. */
export function aclKey(e: AclEntry): string {
  return `${e.principal}\u0000${e.resourceType}\u0000${e.pattern}\u0000${e.resourceName}\u0000${e.operation}\u0000${e.permission}`;
}

/** `topic:orders` / `topic:orders*` (prefix) / `cluster`. */
export function describeResource(
  type: string | undefined,
  name: string | undefined,
  pattern?: string,
): string {
  if (type === 'cluster') return 'cluster';
  return `${type ?? '?'}:${name ?? '?'}${pattern === 'prefix' ? '*' : ''}`;
}

/** One line: `allow User:alice write topic:orders*`. */
export function describeEntry(e: Partial<AclEntry>): string {
  return `${e.permission ?? '?'} ${e.principal ?? '?'} ${e.operation ?? '?'} ${describeResource(e.resourceType, e.resourceName, e.pattern)}`;
}

/**
 * Operations an allowed one brings with it (as Kafka): read, write, delete and alter allow
 * describe; alter_configs allows describe_configs; idempotent_write is allowed by write.
 */
export const IMPLIED_BY: Readonly<Partial<Record<AclOperation, readonly AclOperation[]>>> = {
  describe: ['read', 'write', 'delete', 'alter'],
  describe_configs: ['alter_configs'],
  idempotent_write: ['write'],
};

/** Whether an entry of operation `granted` covers `wanted` when it allows. */
export function allowCovers(granted: AclOperation, wanted: AclOperation): boolean {
  return granted === 'all' || granted === wanted || (IMPLIED_BY[wanted]?.includes(granted) ?? false);
}

/** Whether an entry of operation `granted` covers `wanted` when it denies (no implication: as Kafka). */
export function denyCovers(granted: AclOperation, wanted: AclOperation): boolean {
  return granted === 'all' || granted === wanted;
}

/** Whether an entry's resource pattern names `resource`. */
export function patternMatches(e: AclEntry, resource: AclResource): boolean {
  if (e.resourceType !== resource.type) return false;
  if (e.pattern === 'prefix') return resource.name.startsWith(e.resourceName);
  return e.resourceName === '*' || e.resourceName === resource.name;
}
