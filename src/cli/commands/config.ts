// `memorystreamer config print`: the effective broker configuration and where each value came from.
import type { Command } from 'commander';
import { SETTINGS } from '../../broker/config/config-schema.js';
import { loadConfig } from '../../broker/config/load-config.js';
import type { CliContext } from '../context.js';
import { renderTable } from '../output.js';

export function registerConfig(program: Command, context: CliContext): void {
  const config = program.command('config').description('inspect the broker configuration');
  config
    .command('print')
    .description(
      'show the effective configuration (defaults, file, environment) and the source of each value',
    )
    .option('-c, --config <file>', 'TOML configuration file')
    .addHelpText('after', '\nExample:\n  memorystreamer config print --config memorystreamer.toml')
    .action(async (flags: { config?: string }) => {
      const loaded = await loadConfig({ file: flags.config ?? null, env: context.env });
      const rows = SETTINGS.map((s) => ({
        key: s.key,
        value: loaded.values[s.key],
        source: loaded.sources[s.key],
      }));
      context.print(
        rows,
        renderTable(
          ['key', 'value', 'source'],
          rows.map((r) => [r.key, String(r.value), r.source]),
        ),
      );
    });
}
