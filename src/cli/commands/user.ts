// `memorystreamer user add|passwd|remove|list`: the users of a broker with authentication on.
// Offline with --data-dir (or --config): the users file of that data directory is changed directly,
// before the first start or while the broker runs (it reads the file again when it changes).
// Offline with --cluster etcd://… (or --config of a cluster's broker): the users shared by the
// cluster's brokers in etcd, before any broker starts or while they run (they watch them).
// Otherwise over the wire, as a super-user (--user, with MEMORYSTREAMER_PASSWORD: standard input
// holds the new user's password), applied at once.

import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { parseBrokerAddress, TcpTransport } from '../../client/tcp-transport.js';
import { ALL_SCRAM_MECHANISMS, listUsers, removeUser, setUserPassword } from '../../client/user-admin.js';
import { errorOf } from '../../protocol/error-codes.js';
import {
  checkIterations,
  checkUsername,
  DEFAULT_ITERATIONS,
  deriveCredential,
} from '../../security/credentials.js';
import { EtcdUserStore } from '../../security/etcd-user-store.js';
import { isScramMechanism, type ScramMechanism } from '../../security/scram.js';
import { type UserCredentials, UserStore } from '../../security/user-store.js';
import { type CliContext, type GlobalOptions, readStdinSecret } from '../context.js';
import { type OfflineFlags, offlineTargetOf } from '../offline-target.js';
import { parseIntegerOption } from '../options.js';
import { renderTable } from '../output.js';
import { auditedOfflineChange } from './audit.js';

type TargetFlags = OfflineFlags;

interface PasswordFlags extends TargetFlags {
  passwordStdin?: boolean;
  passwordFile?: string;
  iterations?: string;
  mechanism?: string[];
}

/** Offline: the users to change directly (the file of --data-dir, or a cluster's in etcd); null: over the wire. */
interface OfflineTarget {
  readonly iterations: number;
  /** The broker's data directory (its users file and audit log); null for a cluster's users in etcd. */
  readonly dataDir: string | null;
  open(): Promise<UserStore>;
}

async function offlineTarget(flags: TargetFlags, context: CliContext): Promise<OfflineTarget | null> {
  const target = await offlineTargetOf(flags, context.env, 'users');
  if (target === null) return null;
  const iterations = target.config.values['auth.scram_iterations'] as number;
  if (target.kind === 'cluster')
    return { iterations, dataDir: null, open: () => EtcdUserStore.open(target.etcd) };
  const { dataDir } = target;
  return { iterations, dataDir, open: () => UserStore.open(dataDir) };
}

/**
 * An offline change: run on the opened store and, for a data directory, recorded in its audit log
 * (a cluster's audit logs are the brokers', which record changes made over the wire).
 */
async function changeOffline(
  target: OfflineTarget,
  flags: TargetFlags,
  context: CliContext,
  change: { action: string; name: string },
  work: (store: UserStore) => Promise<void>,
): Promise<string> {
  let path = '';
  const run = () =>
    withStore(target, async (store) => {
      await work(store);
      path = store.path;
    });
  if (target.dataDir === null) await run();
  else await auditedOfflineChange(flags, context, target.dataDir, change, run);
  return path;
}

/** Runs `work` on the opened store, closed after (an etcd connection must not keep the CLI alive). */
async function withStore<T>(target: OfflineTarget, work: (store: UserStore) => Promise<T>): Promise<T> {
  const store = await target.open();
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

async function newPassword(flags: PasswordFlags): Promise<string> {
  if ((flags.passwordStdin === true) === (flags.passwordFile !== undefined))
    throw new InvalidArgumentError(
      'give the password with exactly one of --password-stdin or --password-file',
    );
  let password: string;
  if (flags.passwordFile !== undefined) {
    try {
      password = (await readFile(flags.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (error) {
      throw errorOf('INVALID_CONFIG', `cannot read ${flags.passwordFile}: ${(error as Error).message}`);
    }
  } else password = await readStdinSecret();
  if (password === '') throw errorOf('INVALID_CREDENTIAL', 'the password is empty');
  return password;
}

function mechanismsOf(flags: PasswordFlags): ScramMechanism[] {
  const names = flags.mechanism ?? [...ALL_SCRAM_MECHANISMS];
  for (const name of names)
    if (!isScramMechanism(name))
      throw new InvalidArgumentError(`--mechanism ${JSON.stringify(name)}: SCRAM-SHA-256 or SCRAM-SHA-512`);
  return names as ScramMechanism[];
}

/** A transport to the broker as the CLI's user (over the wire: needs --user, a super-user). */
async function brokerTransport(context: CliContext): Promise<TcpTransport> {
  const options = await context.connectOptions();
  if (options.sasl === undefined)
    throw errorOf(
      'AUTHORIZATION_FAILED',
      'managing users over the wire needs a super-user: --user NAME with MEMORYSTREAMER_PASSWORD (or --data-dir DIR to change the users file offline, --cluster etcd://… those of a cluster)',
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

/**
 * With user commands, --password-stdin (wherever it is on the command line; the global option of
 * the same name takes it) is the new user's password: the CLI's own password then comes from
 * MEMORYSTREAMER_PASSWORD.
 */
function takePasswordStdin(command: Command, flags: PasswordFlags): void {
  const program = command.parent?.parent;
  if (program?.opts<GlobalOptions>().passwordStdin !== true) return;
  flags.passwordStdin = true;
  program.setOptionValue('passwordStdin', undefined);
}

function withTarget(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'change the users file of this data directory (offline, no broker needed)')
    .option(
      '--cluster <etcd://host:port[/name]>',
      'change the users of this cluster in etcd (offline, no broker needed; every broker applies it at once)',
    )
    .option(
      '--config <file>',
      'offline, with the data directory and auth.scram_iterations of this broker configuration',
    );
}

function withPassword(command: Command): Command {
  return withTarget(command)
    .option('--password-stdin', 'read the new password from standard input')
    .option('--password-file <file>', 'read the new password from this file')
    .option(
      '--iterations <n>',
      `PBKDF2 iterations (offline; default auth.scram_iterations, ${DEFAULT_ITERATIONS})`,
    )
    .option('--mechanism <name...>', 'only these mechanisms (default both SCRAM-SHA-256 and SCRAM-SHA-512)');
}

export function registerUser(program: Command, context: CliContext): void {
  const user = program
    .command('user')
    .description('add, change, remove and list the users of a broker with authentication on (SCRAM)')
    .addHelpText(
      'after',
      '\nOffline (before the first start, or beside a running broker):\n  echo "$PW" | memorystreamer user add alice --password-stdin --data-dir ./data\nOffline, the users of a cluster (in etcd):\n  echo "$PW" | memorystreamer user add admin --password-stdin --cluster etcd://127.0.0.1:2379\nOver the wire, as a super-user (authz.super_users):\n  MEMORYSTREAMER_PASSWORD=… memorystreamer --user admin user add alice --password-stdin',
    );

  const setPassword =
    (action: 'add' | 'passwd') => async (name: string, flags: PasswordFlags, command: Command) => {
      takePasswordStdin(command, flags);
      checkUsername(name);
      const mechanisms = mechanismsOf(flags);
      const password = await newPassword(flags);
      const offline = await offlineTarget(flags, context);
      if (offline !== null) {
        const iterations =
          flags.iterations !== undefined
            ? parseIntegerOption('--iterations', flags.iterations, 4096, 10_000_000)
            : offline.iterations;
        checkIterations(iterations);
        const credentials: UserCredentials = {};
        for (const mechanism of mechanisms)
          credentials[mechanism] = deriveCredential(mechanism, password, iterations);
        const path = await changeOffline(offline, flags, context, { action, name }, (store) =>
          store.change({ kind: action, name, credentials }),
        );
        context.print(
          { user: name, action, mechanisms, file: path },
          `${action === 'add' ? 'added' : 'changed the password of'} user ${name} (${path})`,
        );
        return;
      }
      if (flags.iterations !== undefined)
        throw new InvalidArgumentError(
          '--iterations is for offline changes: over the wire the broker says how many',
        );
      const transport = await brokerTransport(context);
      try {
        await setUserPassword(transport, action, name, password, mechanisms);
      } finally {
        await transport.close();
      }
      context.print(
        { user: name, action, mechanisms },
        `${action === 'add' ? 'added' : 'changed the password of'} user ${name}`,
      );
    };

  withPassword(user.command('add <name>'))
    .description('add a user with a password (both SCRAM mechanisms unless --mechanism)')
    .action(setPassword('add'));

  withPassword(user.command('passwd <name>'))
    .description("set a user's new password")
    .action(setPassword('passwd'));

  withTarget(user.command('remove <name>'))
    .description('remove a user (its open connections stay until they close)')
    .action(async (name: string, flags: TargetFlags) => {
      const offline = await offlineTarget(flags, context);
      if (offline !== null) {
        await changeOffline(offline, flags, context, { action: 'remove', name }, (store) =>
          store.change({ kind: 'remove', name }),
        );
      } else {
        const transport = await brokerTransport(context);
        try {
          await removeUser(transport, name);
        } finally {
          await transport.close();
        }
      }
      context.print({ user: name, action: 'remove' }, `removed user ${name}`);
    });

  withTarget(user.command('list'))
    .description('list users and their mechanisms (never a credential)')
    .action(async (flags: TargetFlags) => {
      const offline = await offlineTarget(flags, context);
      let users: Array<{ name: string; mechanisms: Array<{ mechanism: string; iterations: number }> }>;
      if (offline !== null) {
        users = await withStore(offline, async (store) =>
          store.list().map((u) => ({ name: u.name, mechanisms: [...u.mechanisms] })),
        );
      } else {
        const transport = await brokerTransport(context);
        try {
          users = (await listUsers(transport)).users;
        } finally {
          await transport.close();
        }
      }
      context.print(
        users,
        users.length === 0
          ? 'no users'
          : renderTable(
              ['user', 'mechanisms'],
              users.map((u) => [
                u.name,
                u.mechanisms.map((m) => `${m.mechanism} (${m.iterations} iterations)`).join(', '),
              ]),
            ),
      );
    });
}
