// What the broker audits, as audit events: the administrative commands (by their command name and
// decoded request) and user changes over the wire (from the USER_ALTER payload). Kept here so the
// broker's hooks stay one line each.

import { BinaryReader } from '../protocol/codec/binary-reader.js';
import { AclAction, aclAlterCommand } from '../protocol/commands/acl-commands.js';
import { UserAction, userAlterCommand } from '../protocol/commands/auth-commands.js';
import type { AuditEvent } from './audit-record.js';

/** Who asked: the connection's principal and address (absent: in-process, or not known). */
export interface AuditCaller {
  readonly principal: string | null;
  readonly source: string | null;
}

type RequestFields = Readonly<Record<string, unknown>>;

/** The audited administrative commands: the action each is recorded as, its resource and detail. */
const ADMIN_COMMANDS: Readonly<
  Record<string, (request: RequestFields) => Pick<AuditEvent, 'action' | 'resource' | 'detail'>>
> = {
  createTopic: (r) => ({
    action: 'topic.create',
    resource: `topic:${String(r.name)}`,
    detail: pick(r, ['partitions', 'replicationFactor', 'storage', 'config']),
  }),
  alterTopic: (r) => ({
    action: r.partitions !== undefined ? 'topic.alter.partitions' : 'topic.alter',
    resource: `topic:${String(r.name)}`,
    detail: pick(r, ['partitions', 'config']),
  }),
  deleteTopic: (r) => ({ action: 'topic.delete', resource: `topic:${String(r.name)}`, detail: null }),
  reassignPartitions: (r) => ({
    action: 'partition.reassign',
    resource: 'cluster',
    detail: pick(r, ['moves']),
  }),
  drainBroker: (r) => ({ action: 'broker.drain', resource: 'cluster', detail: pick(r, ['brokerId']) }),
  electLeaders: (r) => ({
    action: 'partition.elect_leaders',
    resource: 'cluster',
    detail: pick(r, ['topic']),
  }),
  configSet: (r) => ({ action: 'config.set', resource: 'cluster', detail: pick(r, ['settings']) }),
  configRollback: (r) => ({ action: 'config.rollback', resource: 'cluster', detail: pick(r, ['version']) }),
};

function pick(request: RequestFields, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = request[key];
    if (value !== undefined) out[key] = typeof value === 'bigint' ? value.toString() : value;
  }
  return out;
}

export function isAuditedCommand(name: string): boolean {
  return Object.hasOwn(ADMIN_COMMANDS, name);
}

/** The event of an administrative command that ran (`error` undefined) or was refused. */
export function adminCommandEvent(
  name: string,
  request: unknown,
  caller: AuditCaller | undefined,
  error?: unknown,
): AuditEvent {
  const described = ADMIN_COMMANDS[name]!(request as RequestFields);
  const failure = error as { codeName?: string; message?: string } | undefined;
  return {
    principal: caller?.principal ?? null,
    source: caller?.source ?? 'in-process',
    ...described,
    result:
      error === undefined ? 'success' : failure?.codeName === 'AUTHORIZATION_FAILED' ? 'denied' : 'failure',
    ...(error === undefined
      ? {}
      : {
          detail: {
            ...(described.detail ?? {}),
            error: failure?.codeName ?? 'UNKNOWN',
            message: String(failure?.message ?? error),
          },
        }),
  };
}

/** A USER_ALTER request (add, passwd, remove) over the wire, and how it ended. */
export function userAlterEvent(
  payload: Buffer,
  caller: AuditCaller,
  error?: { codeName?: string; message?: string },
): AuditEvent {
  let name = '?';
  let action = 'user.alter';
  try {
    const request = userAlterCommand.decodeRequest(new BinaryReader(payload));
    name = request.name;
    action =
      request.action === UserAction.ADD
        ? 'user.add'
        : request.action === UserAction.PASSWD
          ? 'user.passwd'
          : 'user.remove';
  } catch {
    // A request that does not decode was refused as such: recorded as a failed user change.
  }
  return {
    principal: caller.principal,
    source: caller.source,
    action,
    resource: `user:${name}`,
    result:
      error === undefined ? 'success' : error.codeName === 'AUTHORIZATION_FAILED' ? 'denied' : 'failure',
    detail: error === undefined ? null : { error: error.codeName ?? 'UNKNOWN', message: error.message ?? '' },
  };
}

/**
 * An authentication: `principal` set when it succeeded; else `reason` (for the log only: it may say
 * that the user does not exist), the user name given and the error code answered.
 */
export function loginEvent(
  principal: string | null,
  source: string,
  mechanism: string | null,
  reason?: string,
  user?: string,
  code?: string,
): AuditEvent {
  return {
    principal,
    source,
    action: 'auth.login',
    resource: principal ?? (user !== undefined && user !== '' ? `User:${user}` : null),
    result: principal !== null ? 'success' : 'failure',
    detail: {
      ...(mechanism !== null ? { mechanism } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(code !== undefined ? { error: code } : {}),
    },
  };
}

/**
 * A configuration reload of the broker (SIGHUP, a changed file, cluster settings, new
 * certificates): what triggered it, the settings it applied, or why it was refused.
 */
export function configReloadEvent(reload: {
  trigger: string;
  keys: readonly string[];
  error?: string;
}): AuditEvent {
  return {
    principal: null,
    source: 'broker',
    action: 'config.reload',
    resource: 'broker',
    result: reload.error === undefined ? 'success' : 'failure',
    detail: {
      trigger: reload.trigger,
      keys: [...reload.keys],
      ...(reload.error !== undefined ? { error: reload.error } : {}),
    },
  };
}

/**
 * An ACL_ALTER request (entries added or removed over the wire) and how it ended: `acl.add` or
 * `acl.remove` on the cluster, the entries in the detail (ACL_LIST reads nothing: not recorded).
 */
export function aclAlterEvent(
  payload: Buffer,
  caller: AuditCaller,
  error?: { codeName?: string; message?: string },
): AuditEvent {
  let action = 'acl.alter';
  let entries: unknown = null;
  try {
    const request = aclAlterCommand.decodeRequest(new BinaryReader(payload));
    action = request.action === AclAction.ADD ? 'acl.add' : 'acl.remove';
    entries = request.entries.map(
      (e) =>
        `${e.permission} ${e.principal} ${e.operation} ${e.resourceType}:${e.resourceName}${e.pattern === 'prefix' ? '*' : ''}`,
    );
  } catch {
    // A request that does not decode was refused as such: recorded as a failed ACL change.
  }
  return {
    principal: caller.principal,
    source: caller.source,
    action,
    resource: 'cluster',
    result:
      error === undefined ? 'success' : error.codeName === 'AUTHORIZATION_FAILED' ? 'denied' : 'failure',
    detail: {
      entries,
      ...(error !== undefined ? { error: error.codeName ?? 'UNKNOWN', message: error.message ?? '' } : {}),
    },
  };
}
