// `memorystreamer config print|set|unset|history|rollback`: the effective broker configuration and where
// each value came from, and the cluster-wide settings with their history (set, history and
// rollback go through a broker of the cluster; a broker alone refuses them with
// CLUSTER_CONFIG_NEEDS_CLUSTER).
import { hostname, userInfo } from 'node:os';
import { type Command, InvalidArgumentError } from 'commander';
import { overlayClusterSettings } from '../../broker/config/cluster-settings.js';
import { SETTINGS } from '../../broker/config/config-schema.js';
import { loadConfig } from '../../broker/config/load-config.js';
import { ClusterConfig } from '../../cluster/control-plane/cluster-config.js';
import { parseClusterUrl } from '../../cluster/control-plane/cluster-url.js';
import { ControlPlane } from '../../cluster/control-plane/control-plane.js';
import type { ConfigValue, ConfigVersionView } from '../../protocol/commands/config-commands.js';
import type { CliContext } from '../context.js';
import { parseIntegerOption } from '../options.js';
import { renderTable } from '../output.js';

/** Who runs this command, as the history records it. */
function operator(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says where the change came from.
  }
  return `${user}@${hostname()}`;
}

/** `key=value` arguments → settings; the value is everything after the first `=`. */
export function parseAssignments(args: readonly string[]): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const arg of args) {
    const at = arg.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`${JSON.stringify(arg)}: expected key=value`);
    settings[arg.slice(0, at)] = arg.slice(at + 1);
  }
  return settings;
}

function shown(value: ConfigValue | null): string {
  return value === null ? '(unset)' : String(value);
}

function describeChanges(version: ConfigVersionView): string {
  if (version.changes.length === 0) return '(no change)';
  return version.changes.map((c) => `${c.key}: ${shown(c.from)} -> ${shown(c.to)}`).join(', ');
}

function versionRow(version: ConfigVersionView): string[] {
  return [
    String(version.version),
    version.topic === null ? 'brokers' : `topic ${version.topic}`,
    new Date(version.changedAtMs).toISOString(),
    version.changedBy,
    describeChanges(version),
    version.note,
  ];
}

const HEADERS = ['version', 'scope', 'when', 'by', 'changes', 'note'];

export function registerConfig(program: Command, context: CliContext): void {
  const config = program
    .command('config')
    .description('inspect the broker configuration; set, list and roll back cluster-wide settings');
  config
    .command('print')
    .description(
      'show the effective configuration (defaults, file, environment, and with cluster.etcd the cluster-wide settings) and the source of each value',
    )
    .option('-c, --config <file>', 'TOML configuration file')
    .addHelpText('after', '\nExample:\n  memorystreamer config print --config memorystreamer.toml')
    .action(async (flags: { config?: string }) => {
      const loaded = await loadConfig({ file: flags.config ?? null, env: context.env });
      let sources: Record<string, string> = loaded.sources;
      let values: Record<string, string | number> = loaded.values;
      const etcd = loaded.values['cluster.etcd'];
      if (typeof etcd === 'string' && etcd !== '') {
        // What a broker of this configuration runs with: the cluster's values override its own.
        const plane = await ControlPlane.connect({ address: parseClusterUrl(etcd), connectTimeoutMs: 3000 });
        try {
          const current = await new ClusterConfig(plane).current();
          const overlay = await overlayClusterSettings(loaded, current?.settings ?? {});
          sources = overlay.sources;
          values = overlay.config.values;
        } finally {
          await plane.close();
        }
      }
      const rows = SETTINGS.map((s) => ({ key: s.key, value: values[s.key], source: sources[s.key] }));
      context.print(
        rows,
        renderTable(
          ['key', 'value', 'source'],
          rows.map((r) => [r.key, String(r.value), r.source]),
        ),
      );
    });

  config
    .command('set')
    .description(
      "set reloadable broker settings for every broker of the cluster (applied at once, over each broker's file)",
    )
    .argument('<key=value...>', 'settings as in the configuration file, e.g. server.idle_timeout=30s')
    .option('--note <text>', 'why, kept in the history')
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer config set server.max_connections_per_address=256\n  memorystreamer config set log.level=debug topics.retention=7d --note "incident 42"',
    )
    .action(async (assignments: string[], flags: { note?: string }) => {
      const settings = parseAssignments(assignments);
      const client = await context.connect();
      try {
        const version = await client.admin.configSet(settings, {
          changedBy: operator(),
          ...(flags.note !== undefined ? { note: flags.note } : {}),
        });
        context.print(version, `configuration version ${version.version}: ${describeChanges(version)}`);
      } finally {
        await client.close();
      }
    });

  config
    .command('unset')
    .description('stop setting keys cluster-wide: every broker goes back to its own value for them')
    .argument('<key...>', 'settings the cluster stops setting, e.g. server.idle_timeout')
    .option('--note <text>', 'why, kept in the history')
    .addHelpText('after', '\nExample:\n  memorystreamer config unset log.level')
    .action(async (keys: string[], flags: { note?: string }) => {
      const client = await context.connect();
      try {
        const version = await client.admin.configUnset(keys, {
          changedBy: operator(),
          ...(flags.note !== undefined ? { note: flags.note } : {}),
        });
        context.print(version, `configuration version ${version.version}: ${describeChanges(version)}`);
      } finally {
        await client.close();
      }
    });

  config
    .command('history')
    .description('the versions of the cluster-wide configuration: number, who, when, what changed, note')
    .option('--topic <name>', "only this topic's configuration versions")
    .option('--brokers', "only the brokers' settings versions")
    .addHelpText(
      'after',
      '\nExamples:\n  memorystreamer config history\n  memorystreamer config history --topic orders\n  memorystreamer --json config history --brokers',
    )
    .action(async (flags: { topic?: string; brokers?: boolean }) => {
      if (flags.topic !== undefined && flags.brokers === true)
        throw new InvalidArgumentError('--topic and --brokers: give one of them');
      const client = await context.connect();
      try {
        const versions = await client.admin.configHistory(
          flags.topic !== undefined ? flags.topic : flags.brokers === true ? null : undefined,
        );
        context.print(
          versions,
          versions.length === 0
            ? 'no configuration versions yet'
            : renderTable(HEADERS, versions.map(versionRow)),
        );
      } finally {
        await client.close();
      }
    });

  config
    .command('rollback')
    .description('make the settings of an earlier version current again (as a new version)')
    .requiredOption('--to <version>', 'the version to return to (see config history)')
    .addHelpText('after', '\nExample:\n  memorystreamer config rollback --to 3')
    .action(async (flags: { to: string }) => {
      const target = parseIntegerOption('--to', flags.to, 1, Number.MAX_SAFE_INTEGER);
      const client = await context.connect();
      try {
        const version = await client.admin.configRollback(target, { changedBy: operator() });
        context.print(
          version,
          `configuration version ${version.version} (${version.note}${version.topic === null ? '' : `, topic ${version.topic}`}): ${describeChanges(version)}`,
        );
      } finally {
        await client.close();
      }
    });
}
