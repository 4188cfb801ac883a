// What every CLI command shares: output mode (human or --json), where output goes, and how to
// reach the broker (flag, MEMORYSTREAMER_BROKERS, or the default 127.0.0.1:7400).

import type { Client } from '../client/client.js';
import { connect } from '../client/connect.js';
import { toJson } from './output.js';
import { resolveBrokers } from './profiles.js';
import type { ProgressOutput } from './progress.js';

/** The global options, as commander parsed them (a later occurrence wins over an earlier one). */
export interface GlobalOptions {
  broker?: string;
  profile?: string;
}

export interface CliContext extends ProgressOutput {
  json: boolean;
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Prints a value: JSON in --json mode, else the human text. */
  print(value: unknown, human: string): void;
  connect(): Promise<Client>;
}

export function createContext(options: {
  json: boolean;
  /** Read when a command connects, after the whole command line was parsed. */
  globals: () => GlobalOptions;
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
  terminal: ProgressOutput['terminal'];
}): CliContext {
  return {
    json: options.json,
    env: options.env,
    out: options.out,
    err: options.err,
    terminal: options.terminal,
    print(value, human) {
      options.out(options.json ? toJson(value, 0) : human);
    },
    connect: async () => {
      const { broker, profile } = options.globals();
      return connect({
        brokers: await resolveBrokers({ broker, profile, env: options.env }),
        clientId: 'memorystreamer-cli',
        connectTimeoutMs: 5000,
      });
    },
  };
}
