// Examples for the commands whose definitions do not carry their own (`--help` shows examples for
// every command: docs/operations.md). Keyed by the command's path below `memorystreamer`.
import type { Command } from 'commander';

const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  'topic list': ['topic list', 'topic list --json'],
  'topic describe': ['topic describe orders', 'topic describe orders --json'],
  'topic alter': [
    'topic alter orders --retention-ms 604800000',
    'topic alter orders --partitions 8 --allow-key-movement',
  ],
  'topic delete': ['topic delete orders'],
  'group list': ['group list', 'group list --json'],
  status: ['status', '--broker 127.0.0.1:7400 status --json'],
  'user add': [
    'user add alice --password-stdin --data-dir ./data   (offline)',
    'user add alice --password-stdin   (over the wire, as a super-user)',
  ],
  'user passwd': ['user passwd alice --password-stdin --data-dir ./data'],
  'user remove': ['user remove alice --data-dir ./data'],
  'user list': ['user list --data-dir ./data', 'user list --json'],
  'acl add': [
    'acl add --principal User:alice --topic orders --operation read write --data-dir ./data',
    'acl add --principal User:billing --group billing- --prefix --operation read',
    "acl add --principal '*' --topic __audit --operation read --deny",
  ],
  'acl remove': ['acl remove --principal User:alice --topic orders --operation write --data-dir ./data'],
  'acl list': ['acl list --data-dir ./data', 'acl list --principal User:alice --json'],
  'tenant add': ['tenant add acme --data-dir ./data'],
  'tenant remove': ['tenant remove acme --data-dir ./data'],
  'tenant add-principal': ['tenant add-principal acme User:alice --data-dir ./data'],
  'tenant remove-principal': ['tenant remove-principal acme User:alice --data-dir ./data'],
  'tenant set-quota': ['tenant set-quota acme --produce-bytes-per-sec 10485760 --data-dir ./data'],
  'tenant list': ['tenant list --data-dir ./data', 'tenant list --json'],
  'audit tail': ['audit tail --data-dir ./data', 'audit tail -n 100 --data-dir ./data'],
  'partition reassignments': ['partition reassignments', 'partition reassignments --json'],
  'partition verify': ['partition verify orders', 'partition verify orders --partition 0 --json'],
  'partition elect-leaders': ['partition elect-leaders', 'partition elect-leaders --topic orders payments'],
  'broker undrain': ['broker undrain --broker-id 2'],
};

/** Adds the examples above to the commands of `program` that have some listed. */
export function addExamples(program: Command): void {
  const visit = (command: Command, path: string): void => {
    for (const sub of command.commands) {
      const subPath = path === '' ? sub.name() : `${path} ${sub.name()}`;
      const examples = EXAMPLES[subPath];
      if (examples !== undefined)
        sub.addHelpText('after', `\nExamples:\n${examples.map((e) => `  memorystreamer ${e}`).join('\n')}`);
      visit(sub, subPath);
    }
  };
  visit(program, '');
}
