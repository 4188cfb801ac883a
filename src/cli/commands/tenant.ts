// `memorystreamer tenant add|remove|list|add-principal|remove-principal|set-quota`: the tenants of a
// broker with authentication on, their principals and the quotas of tenants and principals.
// Offline with --data-dir (or --config): the tenants file of that data directory is changed
// directly, before the first start or while the broker runs (it reads the file again when it
// changes, and open connections get the change at once). Offline with --cluster etcd://… (or
// --config of a cluster's broker): the registry the cluster's brokers share in etcd, before any
// broker starts or while they run (they watch it). Otherwise over the wire, as a super-user
// (--user, with MEMORYSTREAMER_PASSWORD).

import { type Command, InvalidArgumentError } from 'commander';
import { parseBrokerAddress, TcpTransport } from '../../client/tcp-transport.js';
import { tenantAlterCommand, tenantListCommand } from '../../protocol/commands/tenant-commands.js';
import { errorOf } from '../../protocol/error-codes.js';
import { openEtcdTenantStore } from '../../security/etcd-tenant-store.js';
import {
  parseTenantRegistry,
  type QuotaKey,
  type TenantChange,
  type TenantRegistry,
  TenantStore,
} from '../../security/tenant-store.js';
import type { CliContext } from '../context.js';
import { type OfflineFlags, offlineTargetOf } from '../offline-target.js';
import { renderTable } from '../output.js';

type TargetFlags = OfflineFlags;

const TIMEOUT = { timeoutMs: 30_000 };

/** Runs `work` on the offline store of the flags (closed after), or null when the command goes over the wire. */
async function withOfflineStore<T>(
  flags: TargetFlags,
  context: CliContext,
  work: (store: TenantStore) => Promise<T>,
): Promise<{ result: T } | null> {
  const target = await offlineTargetOf(flags, context.env, 'tenants');
  if (target === null) return null;
  const store =
    target.kind === 'cluster'
      ? await openEtcdTenantStore(target.etcd)
      : await TenantStore.open(target.dataDir);
  try {
    return { result: await work(store) };
  } finally {
    await store.close();
  }
}

/** A transport to the broker as the CLI's user (over the wire: needs --user, a super-user). */
async function brokerTransport(context: CliContext): Promise<TcpTransport> {
  const options = await context.connectOptions();
  if (options.sasl === undefined)
    throw errorOf(
      'AUTHORIZATION_FAILED',
      'managing tenants over the wire needs a super-user: --user NAME with MEMORYSTREAMER_PASSWORD (or --data-dir DIR to change the tenants file offline, --cluster etcd://… those of a cluster)',
    );
  return new TcpTransport({
    brokers: options.brokers
      .split(',')
      .filter((b) => b.trim() !== '')
      .map(parseBrokerAddress),
    clientId: 'memorystreamer-cli',
    connectTimeoutMs: 5000,
    sasl: options.sasl,
    ...(options.tls !== undefined ? { tls: options.tls === true ? {} : options.tls } : {}),
  });
}

/** Applies a change offline (to the file, or etcd) or over the wire; returns where it went. */
async function applyChange(change: TenantChange, flags: TargetFlags, context: CliContext): Promise<string> {
  const offline = await withOfflineStore(flags, context, async (store) => {
    await store.change(change);
    return store.path;
  });
  if (offline !== null) return offline.result;
  const transport = await brokerTransport(context);
  try {
    await transport.call(tenantAlterCommand, { change }, TIMEOUT);
  } finally {
    await transport.close();
  }
  return 'the broker';
}

async function readRegistry(flags: TargetFlags, context: CliContext): Promise<TenantRegistry> {
  const offline = await withOfflineStore(flags, context, async (store) => store.current);
  if (offline !== null) return offline.result;
  const transport = await brokerTransport(context);
  try {
    const { registry } = await transport.call(tenantListCommand, {}, TIMEOUT);
    return parseTenantRegistry('(from the broker)', JSON.stringify(registry));
  } finally {
    await transport.close();
  }
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** "1MB", "512KiB", "100" (bytes), or "none" (the quota removed: null). */
export function parseQuotaValue(option: string, text: string, sizes: boolean): number | null {
  if (text === 'none') return null;
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const factor =
    match === null
      ? undefined
      : sizes
        ? SIZE_UNITS[match[2]!.toLowerCase()]
        : match[2] === ''
          ? 1
          : undefined;
  const value = match === null || factor === undefined ? Number.NaN : Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(value))
    throw new InvalidArgumentError(
      `${option} ${JSON.stringify(text)}: ${sizes ? 'a size such as 1MB, 512KiB or 100 (bytes)' : 'a whole number'}, or none`,
    );
  return value;
}

/** CLI option → quota key, and whether it takes a size. */
const QUOTA_OPTIONS: ReadonlyArray<{
  flag: string;
  prop: string;
  key: QuotaKey;
  size: boolean;
  doc: string;
}> = [
  {
    flag: '--produce-bytes-per-sec',
    prop: 'produceBytesPerSec',
    key: 'produceBytesPerSec',
    size: true,
    doc: 'produce rate (throttled)',
  },
  {
    flag: '--fetch-bytes-per-sec',
    prop: 'fetchBytesPerSec',
    key: 'fetchBytesPerSec',
    size: true,
    doc: 'fetch rate (throttled)',
  },
  {
    flag: '--requests-per-sec',
    prop: 'requestsPerSec',
    key: 'requestsPerSec',
    size: false,
    doc: 'request rate (throttled)',
  },
  {
    flag: '--connections',
    prop: 'connections',
    key: 'connections',
    size: false,
    doc: 'open connections (more are refused)',
  },
  {
    flag: '--storage-bytes',
    prop: 'storageBytes',
    key: 'storageBytes',
    size: true,
    doc: "bytes in the tenant's topics (produce refused past it)",
  },
  {
    flag: '--topics',
    prop: 'topics',
    key: 'topics',
    size: false,
    doc: 'topics of the tenant (create refused past it)',
  },
  {
    flag: '--partitions',
    prop: 'partitions',
    key: 'partitions',
    size: false,
    doc: 'partitions of the tenant (create refused past it)',
  },
];

function withTarget(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'change the tenants file of this data directory (offline, no broker needed)')
    .option(
      '--cluster <etcd://host:port[/name]>',
      'change the tenants of this cluster in etcd (offline, no broker needed; every broker applies it at once)',
    )
    .option(
      '--config <file>',
      'offline, with the data directory (or cluster.etcd) of this broker configuration',
    );
}

function formatQuota(quota: Partial<Record<QuotaKey, number>>): string {
  const parts = Object.entries(quota).map(([key, value]) => `${key}=${value}`);
  return parts.length === 0 ? '-' : parts.join(' ');
}

export function registerTenant(program: Command, context: CliContext): void {
  const tenant = program
    .command('tenant')
    .description('tenants (namespaces of topics and groups), their principals and quotas')
    .addHelpText(
      'after',
      '\nOffline (before the first start, or beside a running broker):\n  memorystreamer tenant add acme --data-dir ./data\n  memorystreamer tenant add-principal acme User:alice --data-dir ./data\n  memorystreamer tenant set-quota acme --produce-bytes-per-sec 1MB --storage-bytes 10GB --data-dir ./data\nOffline, the tenants of a cluster (in etcd):\n  memorystreamer tenant add acme --cluster etcd://127.0.0.1:2379\nOver the wire, as a super-user (authz.super_users):\n  MEMORYSTREAMER_PASSWORD=… memorystreamer --user admin tenant list',
    );

  const change =
    (describe: (args: string[]) => { change: TenantChange; text: string }) =>
    async (...args: unknown[]) => {
      const flags = args.find((a) => a !== null && typeof a === 'object' && !Array.isArray(a)) as TargetFlags;
      const names = args.filter((a): a is string => typeof a === 'string');
      const { change: tenantChange, text } = describe(names);
      const where = await applyChange(tenantChange, flags, context);
      context.print({ ...tenantChange, applied: where }, `${text} (${where})`);
    };

  withTarget(tenant.command('add <tenant>'))
    .description('add a tenant (its principals see only its topics and groups)')
    .action(change(([name]) => ({ change: { kind: 'add', tenant: name! }, text: `added tenant ${name}` })));

  withTarget(tenant.command('remove <tenant>'))
    .description(
      'remove a tenant and its memberships (its topics stay, seen by super-users as <tenant>.<name>)',
    )
    .action(
      change(([name]) => ({ change: { kind: 'remove', tenant: name! }, text: `removed tenant ${name}` })),
    );

  withTarget(tenant.command('add-principal <tenant> <principal>'))
    .description('put a principal (User:<name>) in a tenant; a principal belongs to at most one')
    .action(
      change(([name, principal]) => ({
        change: { kind: 'add-principal', tenant: name!, principal: principal! },
        text: `${principal} is in tenant ${name}`,
      })),
    );

  withTarget(tenant.command('remove-principal <tenant> <principal>'))
    .description('take a principal out of a tenant (it then uses the global namespace)')
    .action(
      change(([name, principal]) => ({
        change: { kind: 'remove-principal', tenant: name!, principal: principal! },
        text: `${principal} is no longer in tenant ${name}`,
      })),
    );

  const setQuota = withTarget(tenant.command('set-quota <target>')).description(
    'set quotas of a tenant, or of a principal when <target> is User:<name> ("none" removes one)',
  );
  for (const option of QUOTA_OPTIONS) setQuota.option(`${option.flag} <value>`, option.doc);
  setQuota.action(async (target: string, flags: TargetFlags & Record<string, string | undefined>) => {
    const quota: Partial<Record<QuotaKey, number | null>> = {};
    for (const option of QUOTA_OPTIONS) {
      const text = flags[option.prop];
      if (text !== undefined) quota[option.key] = parseQuotaValue(option.flag, text, option.size);
    }
    if (Object.keys(quota).length === 0)
      throw new InvalidArgumentError(
        `give at least one quota: ${QUOTA_OPTIONS.map((o) => o.flag).join(', ')}`,
      );
    const tenantChange: TenantChange = target.startsWith('User:')
      ? { kind: 'set-quota', principal: target, quota }
      : { kind: 'set-quota', tenant: target, quota };
    const where = await applyChange(tenantChange, flags, context);
    context.print({ ...tenantChange, applied: where }, `quotas of ${target} set (${where})`);
  });

  withTarget(tenant.command('list'))
    .description('list tenants, their principals and quotas, and the quotas of principals')
    .action(async (flags: TargetFlags) => {
      const registry = await readRegistry(flags, context);
      const tenants = [...registry.tenants.values()].map((t) => ({
        tenant: t.name,
        principals: [...t.principals],
        quota: t.quota,
      }));
      const principals = [...registry.principalQuotas].map(([principal, quota]) => ({ principal, quota }));
      const text =
        tenants.length === 0 && principals.length === 0
          ? 'no tenants'
          : [
              renderTable(
                ['tenant', 'principals', 'quotas'],
                tenants.map((t) => [t.tenant, t.principals.join(', ') || '-', formatQuota(t.quota)]),
              ),
              ...(principals.length === 0
                ? []
                : [
                    '',
                    renderTable(
                      ['principal', 'quotas'],
                      principals.map((p) => [p.principal, formatQuota(p.quota)]),
                    ),
                  ]),
            ].join('\n');
      context.print({ tenants, principals }, text);
    });
}
