// What every CLI command shares: output mode (human or --json), where output goes, and how to
// reach the broker (flag, MEMORYSTREAMER_BROKERS, or the default 127.0.0.1:7400).

import type { Client } from '../client/client.js';
import { connect } from '../client/connect.js';
import { toJson } from './output.js';
import { resolveBrokers } from './profiles.js';

export interface CliContext {
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
  broker: string | undefined;
  profile: string | undefined;
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
  err: (text: string) => void;
}): CliContext {
  return {
    json: options.json,
    env: options.env,
    out: options.out,
    err: options.err,
    print(value, human) {
      options.out(options.json ? toJson(value, 0) : human);
    },
    connect: async () =>
      connect({
        brokers: await resolveBrokers({ broker: options.broker, profile: options.profile, env: options.env }),
        clientId: 'memorystreamer-cli',
        connectTimeoutMs: 5000,
      }),
  };
}
