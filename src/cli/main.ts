#!/usr/bin/env node
// The `memorystreamer` command: parses arguments, runs one command, maps failures to exit codes
// (0 ok, 1 the broker refused, 2 bad usage, 3 broker unreachable). Knows the client and the
// embedded broker; the broker knows nothing of it.

import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { registerAcl } from './commands/acl.js';
import { registerAudit } from './commands/audit.js';
import { registerBench } from './commands/bench.js';
import { registerBroker } from './commands/broker.js';
import { registerCluster } from './commands/cluster.js';
import { registerConfig } from './commands/config.js';
import { registerConsume } from './commands/consume.js';
import { registerDev } from './commands/dev.js';
import { registerGroup } from './commands/group.js';
import { registerPartition } from './commands/partition.js';
import { registerProduce } from './commands/produce.js';
import { registerServe } from './commands/serve.js';
import { registerStatus } from './commands/status.js';
import { registerTenant } from './commands/tenant.js';
import { registerTopic } from './commands/topic.js';
import { registerUser } from './commands/user.js';
import { type CliContext, createContext, type GlobalOptions } from './context.js';
import { addExamples } from './examples.js';
import { describeFailure, EXIT, toJson } from './output.js';
import { DEFAULT_BROKER } from './profiles.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Standard error when it is a terminal (progress is redrawn in place there); absent otherwise. */
  terminal?: { write(text: string): void };
}

/** The reader of standard output went away (`consume … | head`): nothing more is written. */
let stdoutClosed = false;

const processIo: CliIo = {
  env: process.env,
  out: (text) => {
    if (!stdoutClosed) process.stdout.write(`${text}\n`);
  },
  err: (text) => process.stderr.write(`${text}\n`),
  ...(process.stderr.isTTY ? { terminal: { write: (text: string) => process.stderr.write(text) } } : {}),
};

export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  // Known before parsing: a usage error is printed as JSON too.
  const json = argv.includes('--json');
  const program: Command = new Command('memorystreamer');
  const context: CliContext = createContext({
    json,
    // Commander takes global options before or after the subcommand; given twice, the later wins
    // (as for every option), so `--broker a:1 topic list --broker b:2` connects to b:2.
    globals: () => program.opts<GlobalOptions>(),
    env: io.env,
    out: io.out,
    err: io.err,
    terminal: io.terminal ?? null,
  });
  program
    .description('MemoryStreamer: persistent message streaming for Node.js')
    .option(
      '--broker <host:port>',
      `broker to connect to (env MEMORYSTREAMER_BROKERS; default ${DEFAULT_BROKER})`,
    )
    .option(
      '--profile <name>',
      'broker list from a profile in ~/.config/memorystreamer/cli.toml (or MEMORYSTREAMER_CLI_CONFIG)',
    )
    .option('--tls', 'connect over TLS, checking the broker certificate against the system CAs')
    .option('--tls-ca <file>', 'connect over TLS, checking the broker certificate against this CA (PEM)')
    .option('--tls-cert <file>', 'client certificate (PEM) for brokers that require client authentication')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option(
      '--user <name>',
      "authenticate as this user (SCRAM; env MEMORYSTREAMER_CLI_USER or the profile's user)",
    )
    .option(
      '--password-stdin',
      'read the password of --user from standard input (else env MEMORYSTREAMER_PASSWORD)',
    )
    .option('--sasl-mechanism <name>', 'SCRAM-SHA-256 (default) or SCRAM-SHA-512')
    .option(
      '--token-file <file>',
      'authenticate with the bearer token (JWT) in this file (env MEMORYSTREAMER_TOKEN)',
    )
    .option('--json', 'print JSON for machines instead of tables')
    // Every subcommand's --help lists these too (they may be given before or after it).
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError();
  registerServe(program, context);
  registerTopic(program, context);
  registerProduce(program, context);
  registerConsume(program, context);
  registerGroup(program, context);
  registerConfig(program, context);
  registerStatus(program, context);
  registerBench(program, context);
  registerDev(program, context);
  registerCluster(program, context);
  registerPartition(program, context);
  registerBroker(program, context);
  registerUser(program, context);
  registerAudit(program, context);
  registerTenant(program, context);
  registerAcl(program, context);
  addExamples(program);
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    // InvalidArgumentError is a CommanderError too: when an action throws it, commander has not
    // printed it yet, so print it here.
    if (error instanceof InvalidArgumentError) {
      context.err(`error: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ||
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage;
    }
    const failure = describeFailure(error);
    if (json) context.out(toJson(failure.json, 0));
    else context.err(failure.message);
    return failure.exitCode;
  }
}

// Runs when executed as the bin, not when imported by tests.
const invokedDirectly = process.argv[1] !== undefined && /(?:^|[\\/])main\.(?:js|ts)$/.test(process.argv[1]);
if (invokedDirectly) {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    if (stdoutClosed) return;
    stdoutClosed = true;
    // Stopped as by Ctrl-C (a consumer closes and commits what it printed), and the exit is clean:
    // a reader that has read enough is not a failure.
    process.emit('SIGTERM', 'SIGTERM');
  });
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
