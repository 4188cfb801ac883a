// `memorystreamer acl add|remove|list`: the access control lists of a broker with authorization on
// (authz.enabled). Offline with --data-dir (or --config): <data dir>/acls.json is changed directly,
// before the first start or beside a running broker (it reads the file again within a second).
// Otherwise over the wire, as a super-user or a principal allowed alter (list: describe) on the
// cluster; applied at once to open connections.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../../broker/config/load-config.js';
import { Admin } from '../../client/admin.js';
import { parseBrokerAddress, TcpTransport } from '../../client/tcp-transport.js';
import {
  ACL_OPERATIONS,
  type AclEntry,
  type AclOperation,
  type AclResourceType,
  CLUSTER_RESOURCE,
  checkAclEntry,
  describeResource,
} from '../../security/acl.js';
import { FileAclStore } from '../../security/acl-store.js';
import type { CliContext } from '../context.js';
import { renderTable } from '../output.js';

interface TargetFlags {
  dataDir?: string;
  config?: string;
}

interface EntryFlags extends TargetFlags {
  principal?: string;
  topic?: string;
  group?: string;
  transactionalId?: string;
  tenant?: string;
  cluster?: boolean;
  prefix?: boolean;
  operation?: string[];
  deny?: boolean;
}

/** Offline: the data directory of --data-dir or --config; null: over the wire. */
async function offlineDir(flags: TargetFlags, context: CliContext): Promise<string | null> {
  if (flags.dataDir === undefined && flags.config === undefined) return null;
  if (flags.dataDir !== undefined) return resolve(flags.dataDir);
  const config = await loadConfig({ file: flags.config ?? null, env: context.env });
  return resolve(config.values['storage.data_dir'] as string);
}

/** The entries an add or remove names: one per --operation. */
function entriesOf(flags: EntryFlags): AclEntry[] {
  if (flags.principal === undefined)
    throw new InvalidArgumentError('--principal User:<name> (or "*") is required');
  const resources: Array<[AclResourceType, string | undefined]> = [
    ['topic', flags.topic],
    ['group', flags.group],
    ['transactional_id', flags.transactionalId],
    ['tenant', flags.tenant],
    ['cluster', flags.cluster === true ? CLUSTER_RESOURCE : undefined],
  ];
  const given = resources.filter(([, name]) => name !== undefined);
  if (given.length !== 1)
    throw new InvalidArgumentError(
      'name exactly one resource: --topic NAME, --group NAME, --transactional-id ID, --tenant NAME or --cluster',
    );
  const [resourceType, resourceName] = given[0]! as [AclResourceType, string];
  if (flags.operation === undefined || flags.operation.length === 0)
    throw new InvalidArgumentError(`--operation is required: ${ACL_OPERATIONS.join(', ')}`);
  return flags.operation.map((operation) => {
    if (!(ACL_OPERATIONS as readonly string[]).includes(operation))
      throw new InvalidArgumentError(
        `--operation ${JSON.stringify(operation)}: one of ${ACL_OPERATIONS.join(', ')}`,
      );
    return checkAclEntry({
      principal: flags.principal!,
      resourceType,
      resourceName,
      pattern: flags.prefix === true ? 'prefix' : 'literal',
      operation: operation as AclOperation,
      permission: flags.deny === true ? 'deny' : 'allow',
    });
  });
}

/** A TCP connection to the broker as the CLI's user (--user with MEMORYSTREAMER_PASSWORD, or none). */
async function withAdmin<T>(context: CliContext, run: (admin: Admin) => Promise<T>): Promise<T> {
  const options = await context.connectOptions();
  const transport = new TcpTransport({
    brokers: options.brokers
      .split(',')
      .filter((b) => b.trim() !== '')
      .map(parseBrokerAddress),
    clientId: 'memorystreamer-cli',
    connectTimeoutMs: 5000,
    ...(options.sasl !== undefined ? { sasl: options.sasl } : {}),
    ...(options.tls !== undefined ? { tls: options.tls === true ? {} : options.tls } : {}),
  });
  try {
    return await run(new Admin(transport, 30_000, () => undefined));
  } finally {
    await transport.close();
  }
}

function rows(entries: readonly AclEntry[]): string {
  return renderTable(
    ['principal', 'permission', 'operation', 'resource', 'pattern'],
    entries.map((e) => [
      e.principal,
      e.permission,
      e.operation,
      describeResource(e.resourceType, e.resourceName),
      e.pattern,
    ]),
  );
}

function withTarget(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'change the ACL file of this data directory (offline, no broker needed)')
    .option('--config <file>', 'offline, with the data directory of this broker configuration');
}

function withEntry(command: Command): Command {
  return withTarget(command)
    .option('--principal <principal>', 'User:<name>, or "*" for every principal')
    .option('--topic <name>', 'a topic (with --prefix: every topic starting with it; "*": every topic)')
    .option('--group <name>', 'a consumer group')
    .option('--transactional-id <id>', 'a transactional / producer id')
    .option('--tenant <name>', 'a tenant')
    .option('--cluster', 'the cluster (administration: create, alter, describe, alter_configs, …)')
    .option('--prefix', 'the name is a prefix')
    .option('--operation <op...>', `one or more of: ${ACL_OPERATIONS.join(', ')}`)
    .option('--deny', 'deny instead of allow (a deny wins over any allow)');
}

export function registerAcl(program: Command, context: CliContext): void {
  const acl = program
    .command('acl')
    .description('add, remove and list the access control lists of a broker with authz.enabled')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer acl add --principal User:alice --topic orders --operation write --data-dir ./data\n  memorystreamer acl add --principal "*" --topic public- --prefix --operation read\n  memorystreamer acl add --principal User:bob --topic orders --operation read --deny\n  memorystreamer --user admin acl list',
    );

  const change = (kind: 'add' | 'remove') => async (flags: EntryFlags) => {
    const entries = entriesOf(flags);
    const dir = await offlineDir(flags, context);
    let changed: number;
    let file: string | undefined;
    if (dir !== null) {
      const store = await FileAclStore.open(dir);
      changed = await store.change({ kind, entries });
      file = store.location;
    } else
      changed = await withAdmin(context, (admin) =>
        kind === 'add' ? admin.createAcls(entries) : admin.deleteAcls(entries),
      );
    context.print(
      { action: kind, changed, entries, ...(file !== undefined ? { file } : {}) },
      `${kind === 'add' ? 'added' : 'removed'} ${changed} of ${entries.length} ACL entr${entries.length === 1 ? 'y' : 'ies'}${file !== undefined ? ` (${file})` : ''}\n${rows(entries)}`,
    );
  };

  withEntry(acl.command('add'))
    .description('allow (or with --deny, deny) operations on a resource to a principal')
    .action(change('add'));

  withEntry(acl.command('remove'))
    .description('remove entries (the same flags as they were added with)')
    .action(change('remove'));

  withTarget(acl.command('list'))
    .description('list the entries')
    .option('--principal <principal>', 'only the entries of this principal')
    .action(async (flags: TargetFlags & { principal?: string }) => {
      const dir = await offlineDir(flags, context);
      let entries =
        dir !== null
          ? [...(await FileAclStore.open(dir)).list()]
          : await withAdmin(context, (admin) => admin.listAcls());
      if (flags.principal !== undefined) entries = entries.filter((e) => e.principal === flags.principal);
      context.print(entries, entries.length === 0 ? 'no ACL entries' : rows(entries));
    });
}
