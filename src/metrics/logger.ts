// Structured logs: JSON lines (pino) by default, or one readable line per event for a terminal.
// The broker logs through the small BrokerLogger interface, so it does not depend on pino and
// tests can capture what is logged.

import { pino } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface BrokerLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

export interface ConfigurableLogger extends BrokerLogger {
  /** Changes the level at run time (configuration reload). */
  setLevel(level: LogLevel): void;
}

/** A logger that drops everything (library default: the embedded broker is silent unless asked). */
export const silentLogger: BrokerLogger = { info() {}, warn() {}, error() {}, debug() {} };

const RANK: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

/**
 * JSON lines on `stream` (pino), or with `pretty`, lines like
 * `2026-11-23T10:00:00.000Z INFO  connection opened remote=127.0.0.1:5123`.
 */
export function createLogger(options: {
  level: LogLevel;
  pretty: boolean;
  stream?: NodeJS.WritableStream;
}): ConfigurableLogger {
  const stream = options.stream ?? process.stderr;
  if (!options.pretty) {
    const logger = pino(
      { level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
      stream,
    );
    return {
      info: (fields, message) => logger.info(fields, message),
      warn: (fields, message) => logger.warn(fields, message),
      error: (fields, message) => logger.error(fields, message),
      debug: (fields, message) => logger.debug(fields, message),
      setLevel: (level) => {
        logger.level = level;
      },
    };
  }
  let level = options.level;
  const write = (at: LogLevel, fields: Record<string, unknown>, message: string) => {
    if (RANK[at] < RANK[level]) return;
    const extra = Object.entries(fields)
      .map(
        ([k, v]) =>
          `${k}=${typeof v === 'string' || typeof v === 'bigint' || typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
      )
      .join(' ');
    stream.write(
      `${new Date().toISOString()} ${at.toUpperCase().padEnd(5)} ${message}${extra ? ` ${extra}` : ''}\n`,
    );
  };
  return {
    info: (fields, message) => write('info', fields, message),
    warn: (fields, message) => write('warn', fields, message),
    error: (fields, message) => write('error', fields, message),
    debug: (fields, message) => write('debug', fields, message),
    setLevel: (next) => {
      level = next;
    },
  };
}
