// Strict parsing of option values: a wrong value names the option, the value and what is allowed.
import { InvalidArgumentError } from 'commander';
import type { Acks } from '../protocol/commands/data-types.js';

export function parseIntegerOption(name: string, value: string, min: number, max: number): number {
  const number = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
    throw new InvalidArgumentError(`${name} ${JSON.stringify(value)}: an integer from ${min} to ${max}`);
  }
  return number;
}

export function parseChoice<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${name} ${JSON.stringify(value)}: one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** `--acks`: 0 (do not wait), 1 (the leader wrote it) or all (every in-sync replica did). */
export function parseAcks(name: string, value: string): Acks {
  const acks = parseChoice(name, value, ['0', '1', 'all'] as const);
  return acks === 'all' ? 'all' : acks === '1' ? 1 : 0;
}

/** earliest | latest | an offset | an ISO-8601 time or epoch milliseconds prefixed with @. */
export function parseStartOption(value: string): 'earliest' | 'latest' | bigint | { timestamp: number } {
  if (value === 'earliest' || value === 'latest') return value;
  if (/^\d+$/.test(value)) return BigInt(value);
  if (/^@\d+$/.test(value)) return { timestamp: Number(value.slice(1)) };
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new InvalidArgumentError(
      `--from ${JSON.stringify(value)}: earliest, latest, an offset, @epoch-ms or an ISO-8601 time`,
    );
  }
  return { timestamp: time };
}
