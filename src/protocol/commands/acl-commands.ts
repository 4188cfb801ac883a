// Access control lists over the wire: list them, add or remove entries. Answered by the connection
// (src/security/acl-requests.ts), never by the broker core; for super-users and principals allowed
// `describe` (list) or `alter` (add, remove) on the cluster. Layouts (little-endian; string = u16
// length + UTF-8):
//
// ACL entry                 principal string ("User:alice" or "*") | resourceType u8 | resourceName
//                           string | pattern u8 | operation u8 | permission u8
//                           (codes: the *_CODES tables below, index = code)
// ACL_LIST request          empty
// ACL_LIST response         count u32 | count × ACL entry
// ACL_ALTER request         action u8 (1 add, 2 remove) | count u32 | count × ACL entry
// ACL_ALTER response        changed u32 (entries added that were not there, or removed that were)

import type { BinaryReader } from '../codec/binary-reader.js';
import type { BinaryWriter } from '../codec/binary-writer.js';
import { errorOf } from '../error-codes.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

/** What an entry protects. A code is its index: append only, never reorder. */
export const RESOURCE_TYPE_CODES = ['topic', 'group', 'cluster', 'transactional_id', 'tenant'] as const;
export type AclResourceType = (typeof RESOURCE_TYPE_CODES)[number];

/** `literal`: the resource name exactly (`*` literal: every name); `prefix`: every name starting with it. */
export const PATTERN_CODES = ['literal', 'prefix'] as const;
export type AclPatternType = (typeof PATTERN_CODES)[number];

/** Operations, as Kafka names them (`all` matches every one). */
export const OPERATION_CODES = [
  'all',
  'read',
  'write',
  'create',
  'delete',
  'alter',
  'describe',
  'describe_configs',
  'alter_configs',
  'cluster_action',
  'idempotent_write',
] as const;
export type AclOperation = (typeof OPERATION_CODES)[number];

export const PERMISSION_CODES = ['allow', 'deny'] as const;
export type AclPermission = (typeof PERMISSION_CODES)[number];

export interface AclEntry {
  /** `User:<name>`, or `*` for every principal. */
  principal: string;
  resourceType: AclResourceType;
  resourceName: string;
  pattern: AclPatternType;
  operation: AclOperation;
  permission: AclPermission;
}

function code<T extends string>(table: readonly T[], value: T): number {
  return table.indexOf(value);
}

function fromCode<T extends string>(table: readonly T[], value: number, what: string): T {
  const found = table[value];
  if (found === undefined) throw errorOf('MALFORMED_PAYLOAD', `${what} code ${value}`);
  return found;
}

export function writeAclEntry(w: BinaryWriter, e: AclEntry): void {
  w.string(e.principal)
    .u8(code(RESOURCE_TYPE_CODES, e.resourceType))
    .string(e.resourceName)
    .u8(code(PATTERN_CODES, e.pattern))
    .u8(code(OPERATION_CODES, e.operation))
    .u8(code(PERMISSION_CODES, e.permission));
}

export function readAclEntry(r: BinaryReader): AclEntry {
  return {
    principal: r.string(),
    resourceType: fromCode(RESOURCE_TYPE_CODES, r.u8(), 'resource type'),
    resourceName: r.string(),
    pattern: fromCode(PATTERN_CODES, r.u8(), 'pattern'),
    operation: fromCode(OPERATION_CODES, r.u8(), 'operation'),
    permission: fromCode(PERMISSION_CODES, r.u8(), 'permission'),
  };
}

/** Smallest encoded entry: two empty strings (2 bytes each) and four u8 codes. */
const MIN_ENTRY_BYTES = 8;

function writeEntries(w: BinaryWriter, entries: readonly AclEntry[]): void {
  w.u32(entries.length);
  for (const e of entries) writeAclEntry(w, e);
}

function readEntries(r: BinaryReader): AclEntry[] {
  const entries: AclEntry[] = [];
  for (let i = r.count(MIN_ENTRY_BYTES); i > 0; i--) entries.push(readAclEntry(r));
  return entries;
}

export const aclListCommand = defineCommand<Record<string, never>, { entries: AclEntry[] }>({
  opcode: Opcode.ACL_LIST,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: (w, r) => writeEntries(w, r.entries),
  decodeResponse: (r) => ({ entries: readEntries(r) }),
});

export const AclAction = { ADD: 1, REMOVE: 2 } as const;
export type AclActionCode = (typeof AclAction)[keyof typeof AclAction];

export interface AclAlterRequest {
  action: AclActionCode;
  entries: AclEntry[];
}

export const aclAlterCommand = defineCommand<AclAlterRequest, { changed: number }>({
  opcode: Opcode.ACL_ALTER,
  encodeRequest: (w, r) => {
    w.u8(r.action);
    writeEntries(w, r.entries);
  },
  decodeRequest: (r) => {
    const action = r.u8();
    if (action !== AclAction.ADD && action !== AclAction.REMOVE)
      throw errorOf('MALFORMED_PAYLOAD', `acl action ${action}`);
    return { action, entries: readEntries(r) };
  },
  encodeResponse: (w, r) => {
    w.u32(r.changed);
  },
  decodeResponse: (r) => ({ changed: r.u32() }),
});
