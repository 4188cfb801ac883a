// `memorystreamer acl add|remove|list`: the access control lists of a broker with authorization on
// (authz.enabled). Offline with --data-dir (or --config): <data dir>/acls.json is changed directly,
// before the first start or beside a running broker (it reads the file again within a second).
// Offline with --cluster etcd://… (or --config of a cluster's broker): the entries the cluster's
// brokers share in etcd, before any broker starts or while they run (they watch them). With add and
// remove, `--cluster` without a value is the cluster resource (both: --cluster --cluster etcd://…).
// Otherwise over the wire, as a super-user or a principal allowed alter (list: describe) on the
// cluster; applied at once to open connections.

import { type Command, InvalidArgumentError, Option } from 'commander';
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
import { type AclStore, FileAclStore } from '../../security/acl-store.js';
import { EtcdAclStore } from '../../security/etcd-acl-store.js';
import type { CliContext } from '../context.js';
import { type OfflineFlags, offlineTargetOf } from '../offline-target.js';
import { renderTable } from '../output.js';

type TargetFlags = OfflineFlags;

interface EntryFlags extends Omit<TargetFlags, 'cluster'> {
  principal?: string;
  topic?: string;
  group?: string;
  transactionalId?: string;
  tenant?: string;
  /** Every --cluster given: '' (no value) is the cluster resource, an etcd:// URL the target. */
  cluster?: string[];
  prefix?: boolean;
  operation?: string[];
  deny?: boolean;
}

/** Where --cluster given without a value goes (a value no URL can be). */
const CLUSTER_RESOURCE_FLAG = '';

/** add / remove: --cluster alone names the cluster resource, --cluster etcd://… where the entries are. */
function splitCluster(flags: EntryFlags): { resource: boolean; target: TargetFlags } {
  const given = flags.cluster ?? [];
  const urls = given.filter((value) => value !== CLUSTER_RESOURCE_FLAG);
  for (const url of urls)
    if (!/^etcds?:\/\//.test(url))
      throw new InvalidArgumentError(
        `--cluster ${JSON.stringify(url)}: alone, --cluster names the cluster resource; with a value, an etcd://host:port[/name] URL (where the cluster's ACLs are)`,
      );
  if (urls.length > 1) throw new InvalidArgumentError('--cluster etcd://…: give one cluster URL');
  return {
    resource: given.includes(CLUSTER_RESOURCE_FLAG),
    target: {
      ...(flags.dataDir !== undefined ? { dataDir: flags.dataDir } : {}),
      ...(flags.config !== undefined ? { config: flags.config } : {}),
      ...(urls[0] !== undefined ? { cluster: urls[0] } : {}),
    },
  };
}

/** Runs `work` on the offline store of the flags (closed after), or null when the command goes over the wire. */
async function withOfflineStore<T>(
  flags: TargetFlags,
  context: CliContext,
  work: (store: AclStore) => Promise<T>,
): Promise<{ result: T } | null> {
  const target = await offlineTargetOf(flags, context.env, 'ACLs');
  if (target === null) return null;
  const store =
    target.kind === 'cluster'
      ? await EtcdAclStore.open(target.etcd)
      : await FileAclStore.open(target.dataDir);
  try {
    return { result: await work(store) };
  } finally {
    await store.close();
  }
}

/** The entries an add or remove names: one per --operation. */
function entriesOf(flags: EntryFlags, clusterResource: boolean): AclEntry[] {
  if (flags.principal === undefined)
    throw new InvalidArgumentError('--principal User:<name> (or "*") is required');
  const resources: Array<[AclResourceType, string | undefined]> = [
    ['topic', flags.topic],
    ['group', flags.group],
    ['transactional_id', flags.transactionalId],
    ['tenant', flags.tenant],
    ['cluster', clusterResource ? CLUSTER_RESOURCE : undefined],
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

function withDataDir(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'change the ACL file of this data directory (offline, no broker needed)')
    .option(
      '--config <file>',
      'offline, with the data directory (or cluster.etcd) of this broker configuration',
    );
}

function withTarget(command: Command): Command {
  return withDataDir(command).option(
    '--cluster <etcd://host:port[/name]>',
    'the ACLs of this cluster in etcd (offline, no broker needed; every broker applies them at once)',
  );
}

function withEntry(command: Command): Command {
  return withDataDir(command)
    .option('--principal <principal>', 'User:<name>, or "*" for every principal')
    .option('--topic <name>', 'a topic (with --prefix: every topic starting with it; "*": every topic)')
    .option('--group <name>', 'a consumer group')
    .option('--transactional-id <id>', 'a transactional / producer id')
    .option('--tenant <name>', 'a tenant')
    .addOption(
      new Option(
        '--cluster [etcd-url]',
        'alone: the cluster resource (administration: create, alter, describe, alter_configs, …); with etcd://host:port[/name]: change the ACLs of that cluster in etcd offline (both: --cluster --cluster etcd://…)',
      )
        .preset(CLUSTER_RESOURCE_FLAG)
        .argParser((value: string, before: string[] | undefined) => [...(before ?? []), value]),
    )
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
      '\nExamples:\n  memorystreamer acl add --principal User:alice --topic orders  --operation write --data-dir ./data\n  memorystreamer acl add --principal User:admin --cluster --operation all --cluster etcd://127.0.0.1:2379\n  memorystreamer acl add --principal "*" --topic public- --prefix --operation read\n  memorystreamer acl add --principal User:bob --topic orders --operation read --deny\n  memorystreamer --user admin acl list',
    );

  const change = (kind: 'add' | 'remove') => async (flags: EntryFlags) => {
    const { resource, target } = splitCluster(flags);
    const entries = entriesOf(flags, resource);
    let file: string | undefined;
    const offline = await withOfflineStore(target, context, async (store) => {
      file = store.location;
      return store.change({ kind, entries });
    });
    const changed =
      offline?.result ??
      (await withAdmin(context, (admin) =>
        kind === 'add' ? admin.createAcls(entries) : admin.deleteAcls(entries),
      ));
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
      const offline = await withOfflineStore(flags, context, async (store) => [...store.list()]);
      let entries = offline?.result ?? (await withAdmin(context, (admin) => admin.listAcls()));
      if (flags.principal !== undefined) entries = entries.filter((e) => e.principal === flags.principal);
      context.print(entries, entries.length === 0 ? 'no ACL entries' : rows(entries));
    });
}
