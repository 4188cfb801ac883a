// How the CLI prints: aligned tables and key/value blocks for people, one JSON document for
// machines (--json), and errors as one line with their code. Knows nothing of the broker.

import { isMemoryStreamerError } from '../common/errors.js';

export interface OutputSink {
  write(text: string): void;
}

export type Cell = string | number | bigint | boolean | null | undefined;

/** JSON.stringify that writes bigints as decimal strings. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent);
}

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return '-';
  return String(cell);
}

/** Renders rows as a left-aligned table with a header line; numbers are right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const texts = rows.map((row) => headers.map((_, i) => cellText(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...texts.map((row) => row[i]!.length)));
  const numeric = headers.map(
    (_, i) =>
      rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || typeof row[i] === 'bigint'),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...texts.map(line)].join('\n');
}

/** Renders `key: value` lines with the keys aligned. */
export function renderFields(fields: Readonly<Record<string, Cell>>): string {
  const width = Math.max(0, ...Object.keys(fields).map((k) => k.length));
  return Object.entries(fields)
    .map(([key, value]) => `${`${key}:`.padEnd(width + 1)} ${cellText(value)}`)
    .join('\n');
}

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  /** The broker answered with an error (unknown topic, conflict, …). */
  failed: 1,
  /** The command line itself was wrong (unknown flag, bad value). */
  usage: 2,
  /** The broker could not be reached or the connection broke. */
  unavailable: 3,
} as const;

/**
 * A setting of the command line, its environment or its files is wrong, found before any broker
 * was asked: a usage error (exit 2) whatever the code it carries, so that a script can tell a typo
 * from a broker's refusal (exit 1).
 */
export class UsageFailure extends Error {
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

/**
 * Runs a step that only reads and checks settings (the command line, the environment, the
 * configuration file): whatever it throws is a usage error.
 */
export async function asUsage<T>(read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw new UsageFailure(error);
  }
}

export function describeFailure(error: unknown): {
  message: string;
  exitCode: number;
  json: Record<string, unknown>;
} {
  if (error instanceof UsageFailure) return { ...describeFailure(error.reason), exitCode: EXIT.usage };
  if (isMemoryStreamerError(error)) {
    const unavailable = error.codeName === 'CONNECTION_CLOSED' || error.codeName === 'BROKER_NOT_AVAILABLE';
    return {
      message: `error ${error.codeName} (${error.code}): ${error.message}`,
      exitCode: unavailable ? EXIT.unavailable : EXIT.failed,
      json: {
        error: { code: error.code, name: error.codeName, retriable: error.retriable, message: error.message },
      },
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message: `error: ${message}`, exitCode: EXIT.failed, json: { error: { message } } };
}
